import { expect } from 'chai';
import { ErrorCode, MessageIdAlreadyExistsError, SessionNotFoundError } from '../../../src/errors.ts';
import type { OutboxMessageInput } from '../../../src/store/storeTypes.ts';
import { describeEachDatabase } from '../../../harness/databases.ts';
import { expectRejection, newSession, sid, useStoreFixture } from './storeFixture.ts';

function msg(sessionId: string, smid: string, over: Partial<OutboxMessageInput> = {}): OutboxMessageInput {
  return {
    sessionId,
    smid,
    traceId: `trace-${smid}`,
    type: 'SEND',
    envelope: `{"t":"SEND","n":"${smid}"}`,
    ...over,
  };
}

describeEachDatabase('ClusterStoreAndForward inbox and outbox', (db) => {
  const f = useStoreFixture(db);

  async function session(): Promise<string> {
    const s = newSession();
    await f.store.registerNewSession(s);
    return s.sessionId;
  }

  describe('inbox', () => {
    it('stores, answers, reads and deletes client message ids', async () => {
      const s = await session();
      await f.store.storeMessageIdInInbox(s, '1');
      await f.store.storeMessageIdInInbox(s, '2');
      expect(await f.store.getMessageFromInbox(s, '1')).to.deep.equal({ storedTs: f.clock.value });
      const bin = Buffer.from([0, 1, 2, 255]);
      expect(await f.store.updateMessageInInbox(s, '2', '{"t":"RESOLVE","msg":{"a":1}}', bin)).to.be.true;
      const two = await f.store.getMessageFromInbox(s, '2');
      expect(two?.fullEnvelope).to.equal('{"t":"RESOLVE","msg":{"a":1}}');
      expect(Buffer.from(two!.binary!).equals(bin)).to.be.true;
      expect(await f.store.updateMessageInInbox(s, 'none', '{}')).to.be.false;
      expect(await f.store.deleteMessageIdsFromInbox(s, ['1', '2', 'never-stored'])).to.equal(2);
      expect(await f.store.getMessageFromInbox(s, '1')).to.equal(null);
    });

    it('treats cmids case-sensitively (aB and Ab are different messages)', async () => {
      const s = await session();
      await f.store.storeMessageIdInInbox(s, 'aB');
      await f.store.storeMessageIdInInbox(s, 'Ab');
      await f.store.updateMessageInInbox(s, 'Ab', '{"which":"Ab"}');
      expect(await f.store.getMessageFromInbox(s, 'aB')).to.not.have.property('fullEnvelope');
      expect(await f.store.deleteMessageIdsFromInbox(s, ['AB', 'ab'])).to.equal(0);
      expect(await f.store.deleteMessageIdsFromInbox(s, ['aB'])).to.equal(1);
      expect((await f.store.getMessageFromInbox(s, 'Ab'))?.fullEnvelope).to.equal('{"which":"Ab"}');
    });

    it('stores a 1 MiB answer envelope intact', async () => {
      const s = await session();
      await f.store.storeMessageIdInInbox(s, 'big');
      const big = `{"msg":"${'é'.repeat(512 * 1024)}"}`;
      await f.store.updateMessageInInbox(s, 'big', big);
      expect((await f.store.getMessageFromInbox(s, 'big'))?.fullEnvelope).to.equal(big);
    });

    it('raises MessageIdAlreadyExistsError on a duplicate and keeps the enclosing transaction usable', async () => {
      const s = await session();
      await expectRejection(
        f.store.transaction(async (trx) => {
          await f.store.storeMessageIdInInbox(s, 'dup', trx);
          await expectRejection(
            f.store.storeMessageIdInInbox(s, 'dup', trx),
            MessageIdAlreadyExistsError,
            ErrorCode.MESSAGE_ID_EXISTS,
          );
          // Still usable (on PostgreSQL only thanks to the savepoint): write more, then read it back.
          await f.store.storeMessageIdInInbox(s, 'after', trx);
          await f.store.updateMessageInInbox(s, 'dup', '{"stored":true}', null, trx);
          expect((await f.store.getMessageFromInbox(s, 'dup', trx))?.fullEnvelope).to.equal(
            '{"stored":true}',
          );
          throw new SessionNotFoundError('roll back on purpose');
        }),
        SessionNotFoundError,
      );
      expect(await f.store.getMessageFromInbox(s, 'dup')).to.equal(null);
      await f.store.transaction(async (trx) => {
        await f.store.storeMessageIdInInbox(s, 'dup', trx);
        await expectRejection(f.store.storeMessageIdInInbox(s, 'dup', trx), MessageIdAlreadyExistsError);
        await f.store.storeMessageIdInInbox(s, 'after', trx);
      });
      expect(await f.store.getMessageFromInbox(s, 'after')).to.not.equal(null);
      await expectRejection(f.store.storeMessageIdInInbox(s, 'dup'), MessageIdAlreadyExistsError);
    });

    it('refuses to write for a session that is gone', async () => {
      const s = sid();
      await expectRejection(
        f.store.storeMessageIdInInbox(s, '1'),
        SessionNotFoundError,
        ErrorCode.SESSION_NOT_FOUND,
      );
    });

    it('batch insert reports STORED / DUPLICATE / SESSION_GONE per item without failing the batch', async () => {
      const a = await session();
      const b = await session();
      const gone = sid();
      await f.store.storeMessageIdInInbox(a, 'old');
      const outcomes = await f.store.storeMessageIdsInInbox([
        { sessionId: a, cmid: '1' },
        { sessionId: a, cmid: 'old' },
        { sessionId: b, cmid: '1' },
        { sessionId: gone, cmid: '1' },
        { sessionId: a, cmid: '1' },
        { sessionId: b, cmid: '2' },
      ]);
      expect(outcomes).to.deep.equal([
        'STORED',
        'DUPLICATE',
        'STORED',
        'SESSION_GONE',
        'DUPLICATE',
        'STORED',
      ]);
      expect(await f.store.storeMessageIdsInInbox([])).to.deep.equal([]);
      expect(
        await f.store.deleteMessageIdsFromInboxBatch([
          { sessionId: a, ids: ['1', 'old'] },
          { sessionId: b, ids: ['1', '2', 'x'] },
        ]),
      ).to.equal(4);
    });

    it('batch insert, writeBehind: stored with the transaction; on MySQL a duplicate fails it instead of DUPLICATE', async () => {
      const a = await session();
      const gone = sid();
      await f.store.storeMessageIdInInbox(a, 'old');
      const outcomes = await f.store.transaction((trx) =>
        f.store.storeMessageIdsInInbox(
          [
            { sessionId: a, cmid: 'n1' },
            { sessionId: gone, cmid: 'n1' },
          ],
          trx,
          { writeBehind: true },
        ),
      );
      expect(outcomes).to.deep.equal(['STORED', 'SESSION_GONE']);
      expect(await f.store.getMessageFromInbox(a, 'n1')).to.not.equal(null);
      const duplicate = f.store.transaction((trx) =>
        f.store.storeMessageIdsInInbox(
          [
            { sessionId: a, cmid: 'n2' },
            { sessionId: a, cmid: 'old' },
          ],
          trx,
          { writeBehind: true },
        ),
      );
      if (f.store.dialect === 'mysql') {
        let error: unknown;
        await duplicate.catch((err: unknown) => (error = err));
        expect(error, 'the transaction fails').to.be.instanceOf(Error);
        // As a unique violation, which the group commit's fallback looks for (BatchWithFallback).
        const chain: unknown[] = [];
        for (let e: unknown = error; e; e = (e as { cause?: unknown }).cause) chain.push(e);
        expect(chain.some((e) => (e as { code?: string }).code === 'ER_DUP_ENTRY')).to.equal(true);
        expect(await f.store.getMessageFromInbox(a, 'n2')).to.equal(null);
      } else {
        expect(await duplicate).to.deep.equal(['STORED', 'DUPLICATE']);
      }
    });

    it('batch insert reports an id a concurrent transaction inserted while the batch ran', async function () {
      // With SQLite's single connection the race cannot happen: the other transaction would hold the connection.
      if (db().dialect === 'sqlite') this.skip();
      const a = await session();
      const other = await db().connect().transaction();
      await other('mats_socket_inbox').insert({ session_id: a, cmid: 'raced', stored_timestamp: 1 });
      // Commit the competitor as soon as the batch sends its INSERT: the INSERT waits for the competitor's row
      // lock, then hits the unique key. PostgreSQL's ON CONFLICT DO NOTHING skips the row and says which went in;
      // on MariaDB the failed multi-row INSERT rolls back by itself, the batch reads what exists and inserts the
      // rest.
      let committed: Promise<void> | undefined;
      let inserts = 0;
      const onQuery = (q: { sql: string }) => {
        if (/^insert into .mats_socket_inbox/i.test(q.sql)) inserts++;
        if (!committed && /^insert into .mats_socket_inbox/i.test(q.sql))
          committed = other.commit().then(() => {});
      };
      f.store.knex.on('query', onQuery);
      try {
        const outcomes = await f.store.storeMessageIdsInInbox([
          { sessionId: a, cmid: 'fresh-1' },
          { sessionId: a, cmid: 'raced' },
          { sessionId: a, cmid: 'fresh-2' },
        ]);
        expect(outcomes).to.deep.equal(['STORED', 'DUPLICATE', 'STORED']);
        expect(inserts, 'INSERT statements').to.equal(db().dialect === 'postgres' ? 1 : 2);
      } finally {
        f.store.knex.off('query', onQuery);
        await (committed ?? other.rollback());
      }
      expect(await f.store.getMessageFromInbox(a, 'fresh-2')).to.not.equal(null);
      expect((await f.store.getMessageFromInbox(a, 'raced'))?.storedTs).to.equal(1);
    });

    it('chunks long id lists', async () => {
      const small = f.newStore({ inClauseChunk: 3 });
      const a = await session();
      const b = await session();
      const items = Array.from({ length: 10 }, (_, i) => ({ sessionId: i % 2 ? a : b, cmid: `c${i}` }));
      expect(await small.storeMessageIdsInInbox(items)).to.deep.equal(items.map(() => 'STORED'));
      expect(await small.storeMessageIdsInInbox(items)).to.deep.equal(items.map(() => 'DUPLICATE'));
      expect(
        await small.deleteMessageIdsFromInboxBatch([
          { sessionId: a, ids: items.filter((i) => i.sessionId === a).map((i) => i.cmid) },
          { sessionId: b, ids: items.filter((i) => i.sessionId === b).map((i) => i.cmid) },
        ]),
      ).to.equal(10);
    });
  });

  describe('outbox', () => {
    it('stores, fetches in id order, marks attempted, unmarks and completes', async () => {
      const s = await session();
      const res = await f.store.storeMessageInOutbox(
        msg(s, 'm1', {
          cmid: '7',
          requestTs: 123,
          type: 'RESOLVE',
          messageText: '{"x":1}',
          messageBinary: Buffer.from('b'),
        }),
      );
      expect(res.sessionExists).to.be.true;
      expect(res.currentNode).to.deep.equal({
        sessionId: s,
        nodename: f.store.options.nodeName,
        connectionId: (await f.store.getCurrentRegisteredNodeForSession(s))!.connectionId,
      });
      for (const m of ['m2', 'm3', 'm4']) await f.store.storeMessageInOutbox(msg(s, m));
      const all = await f.store.getMessagesFromOutbox(s, 10);
      expect(all.map((m) => m.smid)).to.deep.equal(['m1', 'm2', 'm3', 'm4']);
      const ids = all.map((m) => m.id);
      expect([...ids].sort((x, y) => x - y)).to.deep.equal(ids);
      expect(all[0]).to.deep.include({
        smid: 'm1',
        cmid: '7',
        traceId: 'trace-m1',
        type: 'RESOLVE',
        requestTs: 123,
        storedTs: f.clock.value,
        attemptTs: null,
        deliveryCount: 0,
        envelope: '{"t":"SEND","n":"m1"}',
        messageText: '{"x":1}',
      });
      expect(Buffer.from(all[0]!.messageBinary!).toString()).to.equal('b');
      expect((await f.store.getMessagesFromOutbox(s, 2)).map((m) => m.smid)).to.deep.equal(['m1', 'm2']);

      const t1 = f.clock.advance(10);
      expect(await f.store.outboxMessagesAttemptedDelivery(s, ['m1', 'm2', 'nope'])).to.equal(2);
      expect((await f.store.getMessagesFromOutbox(s, 10)).map((m) => m.smid)).to.deep.equal(['m3', 'm4']);
      await f.store.outboxMessagesAttemptedDelivery(s, ['m1']);
      expect(await f.store.outboxMessagesUnmarkAttemptedDelivery(s)).to.equal(2);
      const again = await f.store.getMessagesFromOutbox(s, 10);
      expect(again.map((m) => [m.smid, m.deliveryCount])).to.deep.equal([
        ['m1', 2],
        ['m2', 1],
        ['m3', 0],
        ['m4', 0],
      ]);
      expect(again[0]!.attemptTs).to.equal(null);
      await f.store.outboxMessagesAttemptedDelivery(s, ['m3']);
      expect(await f.store.outboxMessagesComplete(s, ['m1', 'm3', 'x'])).to.equal(2);
      expect((await f.store.getMessagesFromOutbox(s, 10)).map((m) => m.smid)).to.deep.equal(['m2', 'm4']);
      expect(t1).to.be.greaterThan(0);
    });

    it('treats smids case-sensitively (xY and Xy are different messages)', async () => {
      const s = await session();
      await f.store.storeMessageInOutbox(msg(s, 'xY'));
      await f.store.storeMessageInOutbox(msg(s, 'Xy'));
      expect(await f.store.outboxMessagesAttemptedDelivery(s, ['xY'])).to.equal(1);
      expect((await f.store.getMessagesFromOutbox(s, 10)).map((m) => m.smid)).to.deep.equal(['Xy']);
      expect(await f.store.outboxMessagesComplete(s, ['XY', 'xy'])).to.equal(0);
    });

    it('drops a message for a session that is gone and reports a deregistered session without a node', async () => {
      const gone = sid();
      expect(await f.store.storeMessageInOutbox(msg(gone, 'm1'))).to.deep.equal({
        sessionExists: false,
        currentNode: null,
      });
      expect(await f.store.getMessagesFromOutbox(gone, 10)).to.deep.equal([]);
      const s = newSession();
      await f.store.registerNewSession(s);
      await f.store.deregisterSessionFromThisNode(s.sessionId, s.connectionId);
      expect(await f.store.storeMessageInOutbox(msg(s.sessionId, 'm1'))).to.deep.equal({
        sessionExists: true,
        currentNode: null,
      });
    });

    it('raises MessageIdAlreadyExistsError on an smid collision and keeps a joined transaction usable', async () => {
      const s = await session();
      await f.store.storeMessageInOutbox(msg(s, 'same'));
      await expectRejection(
        f.store.storeMessageInOutbox(msg(s, 'same')),
        MessageIdAlreadyExistsError,
        ErrorCode.MESSAGE_ID_EXISTS,
      );
      await f.store.transaction(async (trx) => {
        await expectRejection(f.store.storeMessageInOutbox(msg(s, 'same'), trx), MessageIdAlreadyExistsError);
        await f.store.storeMessageInOutbox(msg(s, 'other'), trx);
        await f.store.storeMessageIdInInbox(s, 'cm', trx);
      });
      expect((await f.store.getMessagesFromOutbox(s, 10)).map((m) => m.smid)).to.deep.equal([
        'same',
        'other',
      ]);
      // The same smid in another session is fine.
      const s2 = await session();
      expect((await f.store.storeMessageInOutbox(msg(s2, 'same'))).sessionExists).to.be.true;
    });

    it('stores a REQUEST with its correlation atomically (both or neither)', async () => {
      const s = await session();
      const correlation = {
        requestTs: 1,
        expiresTs: 2,
        replyTerminatorId: 'term',
        clientEndpointId: 'ep',
        correlationText: 'ctx',
      };
      await f.store.storeMessageInOutbox(msg(s, 'rq', { type: 'REQUEST', correlation }));
      await expectRejection(
        f.store.storeMessageInOutbox(msg(s, 'rq', { type: 'REQUEST', correlation })),
        MessageIdAlreadyExistsError,
      );
      const c = await f.store.getAndDeleteRequestCorrelation(s, 'rq');
      expect(c).to.deep.include({ sessionId: s, smid: 'rq', traceId: 'trace-rq', correlationText: 'ctx' });
      // The correlation exists without the outbox row (e.g. after ACK): the message is not stored either.
      await f.store.storeRequestCorrelation({
        ...correlation,
        sessionId: s,
        smid: 'orphan-corr',
        traceId: 't',
      });
      const [r] = await f.store.storeMessagesInOutbox([
        msg(s, 'orphan-corr', { type: 'REQUEST', correlation }),
      ]);
      expect(r?.smidInUse).to.be.true;
      expect((await f.store.getMessagesFromOutbox(s, 10)).map((m) => m.smid)).to.deep.equal(['rq']);
    });

    it('batch store reports per message: stored, session gone, smid in use (in-batch and existing)', async () => {
      const a = await session();
      const b = await session();
      const gone = sid();
      await f.store.storeMessageInOutbox(msg(a, 'exists'));
      const results = await f.store.storeMessagesInOutbox([
        msg(a, 'a1'),
        msg(b, 'b1'),
        msg(gone, 'g1'),
        msg(a, 'exists'),
        msg(a, 'a2'),
        msg(a, 'a1'),
        msg(b, 'b2'),
      ]);
      expect(
        results.map((r) => [r.sessionExists, r.smidInUse, r.currentNode?.sessionId ?? null]),
      ).to.deep.equal([
        [true, false, a],
        [true, false, b],
        [false, false, null],
        [true, true, a],
        [true, false, a],
        [true, true, a],
        [true, false, b],
      ]);
      expect((await f.store.getMessagesFromOutbox(a, 10)).map((m) => m.smid)).to.deep.equal([
        'exists',
        'a1',
        'a2',
      ]);
      expect((await f.store.getMessagesFromOutbox(b, 10)).map((m) => m.smid)).to.deep.equal(['b1', 'b2']);
      expect(await f.store.storeMessagesInOutbox([])).to.deep.equal([]);
    });

    it('writeBehind: stored with the transaction; on MySQL a smid collision fails the transaction instead of smidInUse', async () => {
      const s = await session();
      await f.store.storeMessagesInOutbox([msg(s, 'taken')]);
      const results = await f.store.transaction((trx) =>
        f.store.storeMessagesInOutbox([msg(s, 'new1'), msg(s, 'new2')], trx, { writeBehind: true }),
      );
      expect(results.map((r) => [r.sessionExists, r.smidInUse])).to.deep.equal([
        [true, false],
        [true, false],
      ]);
      const collide = f.store.transaction((trx) =>
        f.store.storeMessagesInOutbox([msg(s, 'new3'), msg(s, 'taken')], trx, { writeBehind: true }),
      );
      if (f.store.dialect === 'mysql') {
        let error: unknown;
        await collide.catch((err: unknown) => (error = err));
        expect(error, 'the transaction fails').to.be.instanceOf(Error);
        // As a unique violation, which the group commit's fallback looks for (BatchWithFallback).
        const chain: unknown[] = [];
        for (let e: unknown = error; e; e = (e as { cause?: unknown }).cause) chain.push(e);
        expect(chain.some((e) => (e as { code?: string }).code === 'ER_DUP_ENTRY')).to.equal(true);
      } else {
        expect((await collide).map((r) => r.smidInUse)).to.deep.equal([false, true]);
      }
      const stored = (await f.store.getMessagesFromOutbox(s, 10)).map((m) => m.smid);
      expect(stored).to.deep.equal(
        f.store.dialect === 'mysql' ? ['taken', 'new1', 'new2'] : ['taken', 'new1', 'new2', 'new3'],
      );
    });

    it('stores a message as attempted only for the connection the session is registered to on this node', async () => {
      const reg = newSession();
      await f.store.registerNewSession(reg);
      const s = reg.sessionId;
      const results = await f.store.storeMessagesInOutbox([
        msg(s, 'mine', { attemptBy: reg.connectionId }),
        msg(s, 'stale', { attemptBy: 'an-older-connection' }),
        msg(s, 'plain'),
      ]);
      expect(results.map((r) => r.attempted)).to.deep.equal([true, false, false]);
      // The attempted row is not fetched again (its writer has it) but counts its attempt; a resume unmarks it.
      expect((await f.store.getMessagesFromOutbox(s, 10)).map((m) => m.smid)).to.deep.equal([
        'stale',
        'plain',
      ]);
      await f.store.outboxMessagesUnmarkAttemptedDelivery(s);
      const all = await f.store.getMessagesFromOutbox(s, 10);
      expect(all.map((m) => [m.smid, m.deliveryCount])).to.deep.equal([
        ['mine', 1],
        ['stale', 0],
        ['plain', 0],
      ]);
      // Another node's store never marks: the registration names this fixture's node.
      const other = f.newStore({ nodeName: `${f.store.options.nodeName}-other` });
      const [r] = await other.storeMessagesInOutbox([msg(s, 'elsewhere', { attemptBy: reg.connectionId })]);
      expect(r?.attempted).to.equal(false);
    });

    it('batch mark / complete over many sessions with chunking', async () => {
      const small = f.newStore({ nodeName: f.store.options.nodeName, inClauseChunk: 4 });
      const sessions = [await session(), await session(), await session()];
      const messages = sessions.flatMap((s) => Array.from({ length: 5 }, (_, i) => msg(s, `m${i}`)));
      const stored = await small.storeMessagesInOutbox(messages);
      expect(stored.every((r) => r.sessionExists && !r.smidInUse)).to.be.true;
      const rowIds: number[] = [];
      for (const s of sessions) {
        const rows = await small.getMessagesFromOutbox(s, 10);
        expect(rows.map((m) => m.smid)).to.deep.equal(['m0', 'm1', 'm2', 'm3', 'm4']);
        rowIds.push(...rows.slice(0, 3).map((m) => m.id));
      }
      const entries = sessions.map((s) => ({ sessionId: s, ids: ['m0', 'm1', 'm2'] }));
      expect(await small.outboxRowsAttemptedDelivery(rowIds)).to.equal(9);
      for (const s of sessions) {
        expect((await small.getMessagesFromOutbox(s, 10)).map((m) => m.smid)).to.deep.equal(['m3', 'm4']);
      }
      expect(
        await small.outboxMessagesCompleteBatch([...entries, { sessionId: sessions[0]!, ids: ['m4'] }]),
      ).to.equal(10);
      expect(await small.outboxMessagesCompleteBatch([])).to.equal(0);
      expect(await small.outboxMessagesUnmarkAttemptedDelivery(sessions[0]!)).to.equal(0);
      expect((await small.getMessagesFromOutbox(sessions[0]!, 10)).map((m) => m.smid)).to.deep.equal(['m3']);
    });

    it('settles ACKs and ACK2s of many sessions together; on MySQL in one round trip', async () => {
      const small = f.newStore({ nodeName: f.store.options.nodeName, inClauseChunk: 4 });
      const sessions = [await session(), await session(), await session()];
      await small.storeMessagesInOutbox(sessions.flatMap((s) => ['m0', 'm1', 'm2'].map((m) => msg(s, m))));
      await small.storeMessageIdsInInbox(
        sessions.flatMap((s) => ['c0', 'c1'].map((cmid) => ({ sessionId: s, cmid }))),
      );
      const sent: string[] = [];
      const onQuery = (q: { sql: string }) => sent.push(q.sql);
      small.knex.on('query', onQuery);
      try {
        await small.settleClientAcksBatch(
          sessions.map((s) => ({ sessionId: s, ids: ['m0', 'm1'] })),
          sessions.map((s) => ({ sessionId: s, ids: ['c0', 'never-stored'] })),
        );
      } finally {
        small.knex.off('query', onQuery);
      }
      for (const s of sessions) {
        expect((await small.getMessagesFromOutbox(s, 10)).map((m) => m.smid)).to.deep.equal(['m2']);
        expect(await small.getMessageFromInbox(s, 'c0')).to.equal(null);
        expect(await small.getMessageFromInbox(s, 'c1')).to.not.equal(null);
      }
      // Six outbox ids and six inbox ids in groups of four: two deletes each.
      const statements = sent.flatMap((q) => q.split(';'));
      expect(statements.filter((sql) => /^delete/i.test(sql))).to.have.length(4);
      if (db().dialect === 'mysql') {
        // The whole transaction in one query.
        expect(sent).to.have.length(1);
        expect(sent[0]).to.match(/^BEGIN;[^]*;COMMIT$/);
      }
      // Only one kind: the other delete is not sent at all.
      await small.settleClientAcksBatch([{ sessionId: sessions[0]!, ids: ['m2'] }], []);
      await small.settleClientAcksBatch([], [{ sessionId: sessions[1]!, ids: ['c1'] }]);
      expect(await small.getMessagesFromOutbox(sessions[0]!, 10)).to.deep.equal([]);
      expect(await small.getMessageFromInbox(sessions[1]!, 'c1')).to.equal(null);
      expect(await small.getMessageFromInbox(sessions[2]!, 'c1')).to.not.equal(null);
    });

    it('keeps per-session store order for large batched inserts', async () => {
      const s = await session();
      const messages = Array.from({ length: 120 }, (_, i) => msg(s, `o${String(i).padStart(3, '0')}`));
      await f.store.storeMessagesInOutbox(messages);
      const fetched = await f.store.getMessagesFromOutbox(s, 200);
      expect(fetched.map((m) => m.smid)).to.deep.equal(messages.map((m) => m.smid));
    });

    it('batch fetch returns up to maxPerSession messages of each session in id order', async () => {
      const small = f.newStore({ inClauseChunk: 2 });
      const a = await session();
      const b = await session();
      const empty = await session();
      const many = Array.from({ length: 7 }, (_, i) => msg(a, `a${i}`));
      await f.store.storeMessagesInOutbox([...many, msg(b, 'b0'), msg(b, 'b1')]);
      await f.store.outboxMessagesAttemptedDelivery(a, ['a0']);
      const got = await small.getMessagesFromOutboxBatch([a, b, empty, sid(), a], 5);
      expect([...got.keys()]).to.have.length(4);
      expect(got.get(a)!.map((m) => m.smid)).to.deep.equal(['a1', 'a2', 'a3', 'a4', 'a5']);
      expect(got.get(b)!.map((m) => m.smid)).to.deep.equal(['b0', 'b1']);
      expect(got.get(empty)).to.deep.equal([]);
      expect(got.get(b)![0]).to.deep.equal((await f.store.getMessagesFromOutbox(b, 1))[0]);
      expect((await f.store.getMessagesFromOutboxBatch([], 5)).size).to.equal(0);
    });

    it('hasPendingOutbox finds sessions with unattempted rows older than the threshold', async () => {
      const small = f.newStore({ inClauseChunk: 2 });
      const old = await session();
      const attempted = await session();
      const empty = await session();
      await f.store.storeMessageInOutbox(msg(old, 'x'));
      await f.store.storeMessageInOutbox(msg(attempted, 'y'));
      await f.store.outboxMessagesAttemptedDelivery(attempted, ['y']);
      const threshold = f.clock.advance(10_000);
      const recent = await session();
      await f.store.storeMessageInOutbox(msg(recent, 'z'));
      const found = await small.hasPendingOutbox([old, attempted, empty, recent, sid()], threshold);
      expect(found).to.deep.equal([old]);
      expect(await small.hasPendingOutbox([], threshold)).to.deep.equal([]);
    });

    it('getOutboxDepths counts every not-yet-acknowledged row per session, attempted or not', async () => {
      const small = f.newStore({ inClauseChunk: 2 });
      const a = await session();
      const b = await session();
      const none = await session();
      await f.store.storeMessageInOutbox(msg(a, 'a1'));
      await f.store.storeMessageInOutbox(msg(a, 'a2'));
      await f.store.outboxMessagesAttemptedDelivery(a, ['a2']);
      await f.store.storeMessageInOutbox(msg(b, 'b1'));
      const depths = await small.getOutboxDepths([a, b, none, sid()]);
      expect([...depths.entries()].sort()).to.deep.equal(
        [
          [a, 2],
          [b, 1],
        ].sort(),
      );
      await f.store.outboxMessagesComplete(a, ['a1', 'a2']);
      expect((await small.getOutboxDepths([a, b])).get(a)).to.equal(undefined);
      expect((await small.getOutboxDepths([])).size).to.equal(0);
    });
  });
});
