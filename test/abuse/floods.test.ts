import { randomBytes } from 'node:crypto';
import type { RawClient } from '../helpers/rawClient.ts';
import { testAuth } from '../../harness/startTestCluster.ts';
import { AbuseEndpoints } from './abuseEndpoints.ts';
import { describeAbuse, expectNoProblems, goodClientProblems } from './abuseKit.ts';
import {
  answersOf,
  closedByProtocol,
  closedOrAnswered,
  CONTAINING_CLOSE_CODES,
  describeHostile,
  nestedArrayJson,
  rawTextFrame,
  sends,
  writeRaw,
} from './hostile.ts';

const MiB = 1024 * 1024;

/**
 * Contained: closed by the protocol, or answered (ACK/NACK, RETRY as throttling), all of it or at the pace the server
 * chose. The good client's figures say whether that pace cost the others anything.
 */
function floodProblems(hostile: RawClient | undefined, what: string): string[] {
  if (!hostile) return [`${what}: no hostile connection`];
  if (hostile.closeInfo) return closedByProtocol(hostile, what);
  const a = answersOf(hostile);
  return a.acked + a.nacked + a.retried > 0 ? [] : [`${what}: no answer and not closed`];
}

describeAbuse('floods after HELLO', (kit) => {
  it('a NACK with 30,000 ids', async () => {
    let hostile: RawClient | undefined;
    let ponged = false;
    const ids = Array.from({ length: 30_000 }, () => randomBytes(6).toString('hex'));
    const frame = JSON.stringify([{ t: 'NACK', ids }]);
    const r = await kit().attack('NACK with 30,000 ids', async ({ connect, goodAnswers }) => {
      hostile = await connect({ perMessageDeflate: false });
      await hostile.hello(testAuth('nacker'));
      hostile.send(frame);
      hostile.send([{ t: 'PING', x: 'after' }]);
      ponged = await hostile.nextOfType('PONG', 20_000).then(
        () => true,
        () => false,
      );
      await goodAnswers(80);
      return `${describeHostile(hostile)}; PONG after the NACK: ${ponged}`;
    });
    const c = hostile?.closeInfo;
    expectNoProblems(
      // Contained: processed (the PING behind it answered) or closed by the protocol.
      !ponged && !c ? ['the hostile got no PONG and was not closed'] : [],
      c && !CONTAINING_CLOSE_CODES.includes(c.code) ? [`hostile closed with ${c.code}`] : [],
      goodClientProblems(r),
    );
  });

  it('5 frames of 20,000 SENDs each', async () => {
    let hostile: RawClient | undefined;
    const frames = Array.from({ length: 5 }, (_, f) =>
      rawTextFrame(Buffer.from(JSON.stringify(sends(AbuseEndpoints.ack, 20_000, f * 20_000))), false),
    );
    const r = await kit().attack('5 frames of 20,000 SENDs', async ({ connect, goodAnswers }) => {
      hostile = await connect({ perMessageDeflate: false });
      await hostile.hello(testAuth('bigframes'));
      for (const f of frames) await writeRaw(hostile, f);
      await closedOrAnswered(hostile, (a) => a.acked + a.nacked + a.retried >= 100_000, 30_000);
      await goodAnswers(20);
      return describeHostile(hostile);
    });
    expectNoProblems(floodProblems(hostile, '5 × 20,000 SENDs'), goodClientProblems(r));
  });

  it('100,000 SENDs, one per frame', async () => {
    let hostile: RawClient | undefined;
    const bytes = Buffer.concat(
      sends(AbuseEndpoints.ack, 100_000).map((e) => rawTextFrame(Buffer.from(JSON.stringify([e])), false)),
    );
    const r = await kit().attack('100,000 SENDs', async ({ connect, goodAnswers }) => {
      hostile = await connect({ perMessageDeflate: false });
      await hostile.hello(testAuth('manyframes'));
      await writeRaw(hostile, bytes);
      await closedOrAnswered(hostile, (a) => a.acked + a.nacked + a.retried >= 100_000, 35_000);
      await goodAnswers(20);
      return describeHostile(hostile);
    });
    expectNoProblems(floodProblems(hostile, '100,000 SENDs'), goodClientProblems(r, { p99Ms: 2000 }));
  });

  it('60 SENDs with a 4 MiB `tid`', async () => {
    let hostile: RawClient | undefined;
    const tid = 't'.repeat(4 * MiB);
    const r = await kit().attack('60 SENDs with a 4 MiB tid', async ({ connect, goodAnswers }) => {
      hostile = await connect({ perMessageDeflate: false });
      await hostile.hello(testAuth('longtid'));
      for (let i = 0; i < 60 && !hostile.closeInfo; i++) {
        const envelope = { t: 'SEND', eid: AbuseEndpoints.forwardSend, tid, cmid: i, msg: { i } };
        await writeRaw(hostile, rawTextFrame(Buffer.from(JSON.stringify([envelope])), false));
      }
      await closedOrAnswered(hostile, (a) => a.acked + a.nacked + a.retried >= 60, 20_000);
      await goodAnswers(40);
      return describeHostile(hostile);
    });
    expectNoProblems(floodProblems(hostile, '4 MiB tids'), goodClientProblems(r));
  });

  it('a `msg` nested 100,000 levels deep is NACKed, not RETRYed', async () => {
    let hostile: RawClient | undefined;
    let answer = 'none';
    const text =
      `[{"t":"SEND","eid":"${AbuseEndpoints.forwardSend}","tid":"deep","cmid":1,"msg":` +
      `${nestedArrayJson(100_000)}}]`;
    const r = await kit().attack('msg nested 100,000 deep', async ({ connect, goodAnswers }) => {
      hostile = await connect({ perMessageDeflate: false });
      await hostile.hello(testAuth('deep'));
      hostile.send(text);
      const e = await hostile
        .next(
          (x) =>
            ['ACK', 'NACK', 'RETRY'].includes(x.t) && (x.cmid === '1' || (x.ids as unknown[])?.includes('1')),
          15_000,
        )
        .catch(() => undefined);
      answer = e ? `${e.t}${typeof e.desc === 'string' ? ` '${e.desc.slice(0, 80)}'` : ''}` : 'none';
      await goodAnswers(20);
      return `answer: ${answer}; ${describeHostile(hostile)}`;
    });
    expectNoProblems(
      answer.startsWith('NACK') ? [] : [`the deep msg was answered with ${answer}, not NACK`],
      goodClientProblems(r),
    );
  });
});
