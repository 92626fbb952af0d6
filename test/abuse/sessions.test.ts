import type { RawClient } from '../helpers/rawClient.ts';
import { AbuseEndpoints } from './abuseEndpoints.ts';
import { describeAbuse, expectNoProblems, goodClientProblems } from './abuseKit.ts';
import { CONTAINING_CLOSE_CODES, describeHostile, hello } from './hostile.ts';

describeAbuse('authenticated attacks on other users', (kit) => {
  it('a REQUEST with `to: 9007199254740991` to a non-essential forward does not stop other users being answered', async () => {
    let hostile: RawClient | undefined;
    let answer = '';
    const r = await kit().attack('to = MAX_SAFE_INTEGER', async ({ connect, goodAnswers }) => {
      hostile = await connect({ perMessageDeflate: false });
      await hostile.hello(hello('ttl').auth as string);
      hostile.send([
        {
          t: 'REQUEST',
          eid: AbuseEndpoints.nonessential,
          tid: 'ttl-overflow',
          cmid: 1,
          to: Number.MAX_SAFE_INTEGER,
          msg: { id: 'ttl' },
        },
      ]);
      const e = await hostile
        .next((x) => x.cmid === '1' && ['RESOLVE', 'REJECT', 'NACK', 'RETRY'].includes(x.t), 10_000)
        .catch(() => undefined);
      answer = e ? e.t : 'none';
      // Others must still be answered afterwards, not only while the forward is in flight.
      await goodAnswers(120);
      return `answer to the REQUEST: ${answer}; ${describeHostile(hostile)}`;
    });
    const c = hostile?.closeInfo;
    expectNoProblems(
      // Contained: answered (a clamped TTL, or refused) or closed by the protocol; RETRY would invite a resend loop.
      answer === 'RETRY' ? ['the hostile REQUEST got RETRY'] : [],
      c && !CONTAINING_CLOSE_CODES.includes(c.code) ? [`hostile closed with ${c.code}`] : [],
      goodClientProblems(r),
    );
  });

  it("HELLO with another user's sid on the same node is refused without kicking the victim", async () => {
    let victim: RawClient | undefined;
    let attacker: RawClient | undefined;
    let victimAnswered = false;
    const r = await kit().attack('HELLO with a foreign sid', async ({ connect, goodAnswers }) => {
      victim = await connect({ perMessageDeflate: false });
      const sid = (await victim.hello(hello('victim').auth as string)).sid as string;
      attacker = await connect({ perMessageDeflate: false });
      attacker.send([hello('attacker', sid)]);
      await attacker.closed(10_000).catch(() => undefined);
      // The victim still works: a request over its connection is answered.
      if (!victim.closeInfo) {
        victim.send([
          { t: 'REQUEST', eid: AbuseEndpoints.echo, tid: 'victim-1', cmid: 1, msg: { id: 'v1' } },
        ]);
        victimAnswered = await victim
          .next((e) => e.t === 'RESOLVE' && e.cmid === '1', 10_000)
          .then(
            () => true,
            () => false,
          );
      }
      await goodAnswers(20);
      return `attacker ${describeHostile(attacker)}; victim ${describeHostile(victim)}, answered after: ${victimAnswered}`;
    });
    const a = attacker?.closeInfo;
    expectNoProblems(
      !a || a.code !== 1008 || !a.reason.includes('does not match')
        ? [`the attacker was not closed 1008 "does not match" (${a ? `${a.code} ${a.reason}` : 'open'})`]
        : [],
      victim?.closeInfo
        ? [`the victim was kicked: ${victim.closeInfo.code} '${victim.closeInfo.reason}'`]
        : [],
      victimAnswered ? [] : ["the victim's request after the attack was not answered"],
      goodClientProblems(r),
    );
  });
});
