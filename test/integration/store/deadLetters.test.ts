import { expect } from 'chai';
import type { OutboxMessageInput } from '../../../src/store/storeTypes.ts';
import { describeEachDatabase } from '../../../harness/databases.ts';
import { newSession, sid, useStoreFixture } from './storeFixture.ts';

function msg(sessionId: string, smid: string, over: Partial<OutboxMessageInput> = {}): OutboxMessageInput {
  return { sessionId, smid, traceId: `trace-${smid}`, type: 'SEND', envelope: `{"n":"${smid}"}`, ...over };
}

describeEachDatabase('ClusterStoreAndForward dead letters', (db) => {
  const f = useStoreFixture(db);

  async function session(userId?: string): Promise<string> {
    const s = newSession(userId === undefined ? {} : { userId });
    await f.store.registerNewSession(s);
    return s.sessionId;
  }

  it('moves outbox rows with every column, and they stay dead across unmark (resume)', async () => {
    const user = `u-${sid()}`;
    const s = await session(user);
    const bin = Buffer.from([9, 8, 7]);
    const storedTs = f.clock.value;
    await f.store.storeMessageInOutbox(
      msg(s, 'd1', { cmid: '5', type: 'RESOLVE', messageText: '{"m":1}', messageBinary: bin, requestTs: 77 }),
    );
    await f.store.storeMessageInOutbox(msg(s, 'keep'));
    for (let i = 0; i < 3; i++) {
      f.clock.advance(100);
      await f.store.outboxMessagesAttemptedDelivery(s, ['d1']);
      await f.store.outboxMessagesUnmarkAttemptedDelivery(s);
    }
    await f.store.outboxMessagesAttemptedDelivery(s, ['d1']);
    const attemptTs = f.clock.value;
    const dlTs = f.clock.advance(50);
    const moved = await f.store.outboxMessagesDeadLetter(
      s,
      ['d1', 'missing'],
      'delivery_limit',
      'too many attempts',
    );
    expect(moved).to.deep.equal(['d1']);
    expect(await f.store.outboxMessagesUnmarkAttemptedDelivery(s)).to.equal(0);
    expect((await f.store.getMessagesFromOutbox(s, 10)).map((m) => m.smid)).to.deep.equal(['keep']);

    const [summary] = await f.store.listDeadLetters({ sessionId: s });
    expect(summary).to.deep.include({
      sessionId: s,
      smid: 'd1',
      userId: user,
      cmid: '5',
      type: 'RESOLVE',
      traceId: 'trace-d1',
      deliveryCount: 4,
      reason: 'delivery_limit',
      description: 'too many attempts',
      originalStoredTs: storedTs,
      lastAttemptTs: attemptTs,
      deadLetteredTs: dlTs,
      deadLetteredByNode: f.store.options.nodeName,
    });
    expect(summary).to.not.have.property('envelope');
    const full = await f.store.getDeadLetter(summary!.id);
    expect(full).to.deep.include({ envelope: '{"n":"d1"}', messageText: '{"m":1}' });
    expect(Buffer.from(full!.messageBinary!).equals(bin)).to.be.true;
    expect(await f.store.getDeadLetter(-1)).to.equal(null);
    expect(await f.store.outboxMessagesDeadLetter(s, [], 'undeliverable')).to.deep.equal([]);
  });

  it('a client NACK counts as a delivery when the attempt mark has not been stored yet', async () => {
    const s = await session();
    for (const smid of ['unmarked', 'marked', 'resumed', 'limit'])
      await f.store.storeMessageInOutbox(msg(s, smid));
    const markTs = f.clock.advance(10);
    await f.store.outboxMessagesAttemptedDelivery(s, ['resumed']);
    await f.store.outboxMessagesUnmarkAttemptedDelivery(s);
    await f.store.outboxMessagesAttemptedDelivery(s, ['marked']);
    const nackTs = f.clock.advance(10);
    await f.store.outboxMessagesDeadLetter(
      s,
      ['unmarked', 'marked', 'resumed'],
      'client_nack',
      'no terminator',
    );
    await f.store.outboxMessagesDeadLetter(s, ['limit'], 'undeliverable', 'too big');
    const bySmid = new Map((await f.store.listDeadLetters({ sessionId: s })).map((d) => [d.smid, d]));
    // Written, NACKed before the batched mark: the NACK is the proof of the one delivery.
    expect(bySmid.get('unmarked')).to.include({ deliveryCount: 1, lastAttemptTs: nackTs });
    // The mark got there first: as marked.
    expect(bySmid.get('marked')).to.include({ deliveryCount: 1, lastAttemptTs: markTs });
    // Delivered before a resume (unmarked then), written again and NACKed before the new mark.
    expect(bySmid.get('resumed')).to.include({ deliveryCount: 2, lastAttemptTs: nackTs });
    // Other reasons prove nothing: as stored.
    expect(bySmid.get('limit')).to.include({ deliveryCount: 0, lastAttemptTs: null });
  });

  it('lists by session, user and time range, paged by id', async () => {
    const user = `u-${sid()}`;
    const a = await session(user);
    const b = await session(user);
    const other = await session();
    const t0 = f.clock.advance(1000);
    for (const [s, smid] of [
      [a, 'a1'],
      [b, 'b1'],
      [a, 'a2'],
      [other, 'o1'],
      [b, 'b2'],
    ] as const) {
      f.clock.advance(10);
      await f.store.storeMessageInOutbox(msg(s, smid));
      await f.store.outboxMessagesDeadLetter(s, [smid], 'undeliverable', null);
    }
    const smids = (rows: { smid: string }[]) => rows.map((r) => r.smid);
    expect(smids(await f.store.listDeadLetters({ sessionId: a }))).to.deep.equal(['a1', 'a2']);
    expect(smids(await f.store.listDeadLetters({ userId: user }))).to.deep.equal(['a1', 'b1', 'a2', 'b2']);
    expect(
      smids(await f.store.listDeadLetters({ userId: user, fromTs: t0 + 20, toTs: t0 + 50 })),
    ).to.deep.equal(['b1', 'a2']);
    expect(smids(await f.store.listDeadLetters({ fromTs: t0 + 40, toTs: t0 + 41 }))).to.deep.equal(['o1']);
    const paged: string[] = [];
    let afterId: number | undefined;
    for (;;) {
      const page = await f.store.listDeadLetters(
        afterId === undefined ? { userId: user, limit: 3 } : { userId: user, limit: 3, afterId },
      );
      if (page.length === 0) break;
      paged.push(...smids(page));
      afterId = page[page.length - 1]!.id;
    }
    expect(paged).to.deep.equal(['a1', 'b1', 'a2', 'b2']);
  });

  it('counts with the same filters, and lists newest first, paged by beforeId', async () => {
    const a = await session();
    const b = await session();
    const smids = ['n1', 'n2', 'n3', 'n4'];
    for (const smid of smids) {
      await f.store.storeMessageInOutbox(msg(smid === 'n3' ? b : a, smid));
      await f.store.outboxMessagesDeadLetter(smid === 'n3' ? b : a, [smid], 'undeliverable');
    }
    const all = await f.store.listDeadLetters({ sessionId: a });
    expect(await f.store.countDeadLetters({ sessionId: a })).to.equal(3);
    expect(await f.store.countDeadLetters({ sessionId: a, limit: 1, afterId: all[0]!.id })).to.equal(2);
    const first = await f.store.listDeadLetters({ sessionId: a, newestFirst: true, limit: 2 });
    expect(first.map((d) => d.smid)).to.deep.equal(['n4', 'n2']);
    const next = await f.store.listDeadLetters({ sessionId: a, newestFirst: true, beforeId: first[1]!.id });
    expect(next.map((d) => d.smid)).to.deep.equal(['n1']);
    expect(await f.store.countDeadLetters({ sessionId: a, beforeId: first[1]!.id })).to.equal(1);
  });

  it('requeues with the same smid, delivery count 0 and a new id at the end of the order', async () => {
    const s = await session();
    await f.store.storeMessageInOutbox(msg(s, 'r1'));
    await f.store.outboxMessagesAttemptedDelivery(s, ['r1']);
    await f.store.outboxMessagesDeadLetter(s, ['r1'], 'delivery_limit');
    await f.store.storeMessageInOutbox(msg(s, 'later'));
    const [dl] = await f.store.listDeadLetters({ sessionId: s });
    const now = f.clock.advance(5);
    const res = await f.store.requeueDeadLetter(dl!.id);
    expect(res).to.deep.equal({
      ok: true,
      currentNode: {
        sessionId: s,
        nodename: f.store.options.nodeName,
        connectionId: (await f.store.getCurrentRegisteredNodeForSession(s))!.connectionId,
      },
    });
    const out = await f.store.getMessagesFromOutbox(s, 10);
    expect(out.map((m) => [m.smid, m.deliveryCount])).to.deep.equal([
      ['later', 0],
      ['r1', 0],
    ]);
    expect(out[1]!.storedTs).to.equal(now);
    expect(out[1]!.envelope).to.equal('{"n":"r1"}');
    expect(await f.store.getDeadLetter(dl!.id)).to.equal(null);
    expect(await f.store.requeueDeadLetter(dl!.id)).to.deep.equal({ ok: false, reason: 'NOT_FOUND' });
  });

  it('a late attempt mark of a fetched row does not hit the dead letter requeued under its smid', async () => {
    const s = await session();
    await f.store.storeMessageInOutbox(msg(s, 'r2'));
    const [fetched] = await f.store.getMessagesFromOutbox(s, 10);
    // The forwarder wrote the row and holds its mark; meanwhile the client NACKs it and an operator requeues it.
    await f.store.outboxMessagesDeadLetter(s, ['r2'], 'client_nack');
    const [dl] = await f.store.listDeadLetters({ sessionId: s });
    expect((await f.store.requeueDeadLetter(dl!.id)).ok).to.equal(true);
    expect(await f.store.outboxRowsAttemptedDelivery([fetched!.id])).to.equal(0);
    const out = await f.store.getMessagesFromOutbox(s, 10);
    expect(out.map((m) => [m.smid, m.deliveryCount])).to.deep.equal([['r2', 0]]);
    expect(await f.store.outboxRowsAttemptedDelivery([out[0]!.id])).to.equal(1);
    expect(await f.store.getMessagesFromOutbox(s, 10)).to.deep.equal([]);
  });

  it('refuses to requeue when the session is gone or the smid is back in use', async () => {
    const s = await session();
    await f.store.storeMessageInOutbox(msg(s, 'x1'));
    await f.store.storeMessageInOutbox(msg(s, 'x2'));
    await f.store.outboxMessagesDeadLetter(s, ['x1', 'x2'], 'undeliverable');
    const [d1, d2] = await f.store.listDeadLetters({ sessionId: s });
    await f.store.storeMessageInOutbox(msg(s, 'x1'));
    expect(await f.store.requeueDeadLetter(d1!.id)).to.deep.equal({ ok: false, reason: 'SMID_IN_USE' });
    expect(await f.store.getDeadLetter(d1!.id)).to.not.equal(null);
    await f.store.closeSession(s);
    expect(await f.store.requeueDeadLetter(d2!.id)).to.deep.equal({ ok: false, reason: 'SESSION_GONE' });
    expect(await f.store.getDeadLetter(d2!.id)).to.not.equal(null);
    // A joined transaction stays usable after SMID_IN_USE (savepoint).
    const s2 = await session();
    await f.store.storeMessageInOutbox(msg(s2, 'y'));
    await f.store.outboxMessagesDeadLetter(s2, ['y'], 'undeliverable');
    await f.store.storeMessageInOutbox(msg(s2, 'y'));
    const [dy] = await f.store.listDeadLetters({ sessionId: s2 });
    await f.store.transaction(async (trx) => {
      expect(await f.store.requeueDeadLetter(dy!.id, trx)).to.deep.equal({
        ok: false,
        reason: 'SMID_IN_USE',
      });
      await f.store.storeMessageInOutbox(msg(s2, 'z'), trx);
    });
    expect((await f.store.getMessagesFromOutbox(s2, 10)).map((m) => m.smid)).to.deep.equal(['y', 'z']);
  });

  it('purges by ids and by age (optionally per session), in batches', async () => {
    const small = f.newStore({ inClauseChunk: 2 });
    const a = await session();
    const b = await session();
    const old = f.clock.advance(1000);
    for (const smid of ['p1', 'p2', 'p3', 'p4', 'p5']) {
      await f.store.storeMessageInOutbox(msg(a, smid));
      await f.store.outboxMessagesDeadLetter(a, [smid], 'undeliverable');
    }
    await f.store.storeMessageInOutbox(msg(b, 'q1'));
    await f.store.outboxMessagesDeadLetter(b, ['q1'], 'undeliverable');
    f.clock.advance(1000);
    await f.store.storeMessageInOutbox(msg(a, 'new'));
    await f.store.outboxMessagesDeadLetter(a, ['new'], 'undeliverable');
    const ids = (await f.store.listDeadLetters({ sessionId: a })).map((d) => d.id);
    expect(await small.purgeDeadLetters({ ids: [ids[0]!, ids[1]!, ids[2]!, -5] })).to.equal(3);
    expect(await small.purgeDeadLetters({ ids: [] })).to.equal(0);
    expect(await small.purgeDeadLetters({ olderThanTs: old + 1, sessionId: a })).to.equal(2);
    expect((await f.store.listDeadLetters({ sessionId: b })).length).to.equal(1);
    expect((await f.store.listDeadLetters({ sessionId: a })).map((d) => d.smid)).to.deep.equal(['new']);
    expect(await small.purgeDeadLetters({ olderThanTs: old + 1 })).to.be.at.least(1);
    expect(await f.store.listDeadLetters({ sessionId: b })).to.deep.equal([]);
  });
});
