import { expect } from 'chai';
import type { Knex } from 'knex';
import { causedByOptimisticConflict, causedByUniqueViolation } from '../../../src/store/sqlErrors.ts';
import type { OutboxMessageInput } from '../../../src/store/storeTypes.ts';
import { describeEachDatabase } from '../../../harness/databases.ts';
import { newSession, useStoreFixture } from './storeFixture.ts';

/** The queries `knex` hands to its driver until `stop()`. */
function recordQueries(knex: Knex): { queries: string[]; stop(): void } {
  const queries: string[] = [];
  const onQuery = (q: { sql: string }) => queries.push(q.sql);
  knex.on('query', onQuery);
  return { queries, stop: () => knex.off('query', onQuery) };
}

/** One query, the whole transaction: `BEGIN;…;COMMIT` (a `TransactionScript`). */
function expectOneScript(queries: readonly string[]): void {
  expect(queries, 'the transaction in one query').to.have.length(1);
  expect(queries[0]).to.match(/^BEGIN( IMMEDIATE)?;[^]*;COMMIT$/);
}

function msg(sessionId: string, smid: string, over: Partial<OutboxMessageInput> = {}): OutboxMessageInput {
  return { sessionId, smid, traceId: `trace-${smid}`, type: 'RESOLVE', envelope: `{"t":"RESOLVE"}`, ...over };
}

describeEachDatabase('storeMessagesInOutboxAtCommit (outbox writes of a transaction script)', (db) => {
  const f = useStoreFixture(db);

  it('on MySQL and SQLite: in the script; existing sessions only, attempted by the registered writer, in order', async function () {
    if (db().dialect === 'postgres') {
      const s = newSession();
      await f.store.registerNewSession(s);
      const none = await f.store.script((tx) =>
        f.store.storeMessagesInOutboxAtCommit([msg(s.sessionId, 'x')], tx),
      );
      expect(none, 'PostgreSQL: the caller stores the usual way').to.equal(undefined);
      return;
    }
    const here = newSession();
    const elsewhere = newSession();
    await f.store.registerNewSession(here);
    await f.store.registerNewSession(elsewhere);
    const messages = [
      msg(here.sessionId, 'h1', { attemptBy: here.connectionId, messageBinary: Buffer.from([0, 255]) }),
      msg('NoSuchSession0000', 'gone'),
      msg(elsewhere.sessionId, 'e1', { attemptBy: 'an-older-connection', messageText: '{"a":"é\'"}' }),
      msg(here.sessionId, 'h2', { attemptBy: here.connectionId, cmid: 'c7', requestTs: 1234 }),
      // Session ids are case-sensitive: this one is not `here`'s.
      msg(
        here.sessionId.toLowerCase() === here.sessionId
          ? here.sessionId.toUpperCase()
          : here.sessionId.toLowerCase(),
        'case',
      ),
    ];
    const sent = recordQueries(f.store.knex);
    let pending: Awaited<ReturnType<typeof f.store.storeMessagesInOutboxAtCommit>>;
    try {
      pending = await f.store.script(async (tx) => {
        const p = await f.store.storeMessagesInOutboxAtCommit(messages, tx);
        expect(p).to.not.equal(undefined);
        return p;
      });
    } finally {
      sent.stop();
    }
    expectOneScript(sent.queries);
    const results = await pending!.results;
    expect(results.map((r) => [r.sessionExists, r.attempted, r.smidInUse])).to.deep.equal([
      [true, true, false],
      [false, false, false],
      [true, false, false],
      [true, true, false],
      [false, false, false],
    ]);
    expect(results[2]!.currentNode).to.deep.equal({
      sessionId: elsewhere.sessionId,
      nodename: f.store.options.nodeName,
      connectionId: elsewhere.connectionId,
    });
    // The attempted rows are not fetched again (their writer has them); a resume unmarks them, in store order.
    expect((await f.store.getMessagesFromOutbox(here.sessionId, 10)).map((m) => m.smid)).to.deep.equal([]);
    await f.store.outboxMessagesUnmarkAttemptedDelivery(here.sessionId);
    const mine = await f.store.getMessagesFromOutbox(here.sessionId, 10);
    expect(mine.map((m) => [m.smid, m.deliveryCount, m.cmid, m.requestTs])).to.deep.equal([
      ['h1', 1, null, null],
      ['h2', 1, 'c7', 1234],
    ]);
    expect(Buffer.from(mine[0]!.messageBinary!).equals(Buffer.from([0, 255]))).to.be.true;
    expect(mine[0]!.storedTs).to.equal(f.clock.value);
    expect(mine[0]!.attemptTs).to.equal(null);
    const theirs = await f.store.getMessagesFromOutbox(elsewhere.sessionId, 10);
    expect(theirs.map((m) => [m.smid, m.deliveryCount, m.messageText, m.type])).to.deep.equal([
      ['e1', 0, '{"a":"é\'"}', 'RESOLVE'],
    ]);
  });

  it('on MySQL and SQLite: a smid already in the session fails the transaction, and nothing is stored', async function () {
    if (db().dialect === 'postgres') this.skip();
    const s = newSession();
    await f.store.registerNewSession(s);
    await f.store.storeMessagesInOutbox([msg(s.sessionId, 'taken')]);
    let results: Promise<unknown> | undefined;
    const failure = await f.store
      .script(async (tx) => {
        const p = await f.store.storeMessagesInOutboxAtCommit(
          [msg(s.sessionId, 'fresh'), msg(s.sessionId, 'taken')],
          tx,
        );
        results = p!.results;
      })
      .catch((e: unknown) => e);
    expect(causedByUniqueViolation(failure), String(failure)).to.be.true;
    expect(await results!.catch((e: unknown) => causedByUniqueViolation(e))).to.be.true;
    expect((await f.store.getMessagesFromOutbox(s.sessionId, 10)).map((m) => m.smid)).to.deep.equal([
      'taken',
    ]);
  });

  it('on MySQL: the writes hold the session lock (a close waits for the commit)', async function () {
    if (db().dialect !== 'mysql') this.skip();
    const s = newSession();
    await f.store.registerNewSession(s);
    const racer = f.racerKnex();
    await f.store.script(async (tx) => {
      await f.store.storeMessagesInOutboxAtCommit([msg(s.sessionId, 'm')], tx);
      // The knex transaction begins with the held writes, a statement of its own sends them now, and the
      // transaction stays open.
      await (await tx.knex()).raw('select 1');
      const closing = await racer
        .transaction(async (other) => {
          await other.raw('SET SESSION innodb_lock_wait_timeout = 1');
          await other('mats_socket_session').where('session_id', s.sessionId).delete();
        })
        .catch((e: unknown) => e);
      expect(String(closing)).to.match(/Lock wait timeout/);
    });
    expect((await f.store.getMessagesFromOutbox(s.sessionId, 10)).map((m) => m.smid)).to.deep.equal(['m']);
  });

  it('does not apply to request correlations or a (session, smid) twice: the caller stores the usual way', async () => {
    const s = newSession();
    await f.store.registerNewSession(s);
    const correlation = { requestTs: 1, expiresTs: 2, replyTerminatorId: 'T', clientEndpointId: 'E' };
    await f.store.script(async (tx) => {
      expect(
        await f.store.storeMessagesInOutboxAtCommit([msg(s.sessionId, 'r', { correlation })], tx),
      ).to.equal(undefined);
      expect(
        await f.store.storeMessagesInOutboxAtCommit([msg(s.sessionId, 'd'), msg(s.sessionId, 'd')], tx),
      ).to.equal(undefined);
    });
    expect(await f.store.getMessagesFromOutbox(s.sessionId, 10)).to.deep.equal([]);
  });
});

describeEachDatabase('storeMessageIdsInInboxAtCommit (inbox writes of a transaction script)', (db) => {
  const f = useStoreFixture(db);

  it('on MySQL and SQLite: in the script, and if the transaction commits, every item was stored', async () => {
    const a = newSession();
    const b = newSession();
    await f.store.registerNewSession(a);
    await f.store.registerNewSession(b);
    const items = [
      { sessionId: a.sessionId, cmid: '1' },
      { sessionId: b.sessionId, cmid: '1' },
      { sessionId: a.sessionId, cmid: '2' },
    ];
    const sent = recordQueries(f.store.knex);
    let applied: boolean | undefined;
    try {
      await f.store.script(async (tx) => {
        applied = await f.store.storeMessageIdsInInboxAtCommit(items, tx);
      });
    } finally {
      sent.stop();
    }
    if (db().dialect === 'postgres') {
      expect(applied, 'PostgreSQL: the caller stores the usual way').to.equal(false);
      return;
    }
    expect(applied).to.equal(true);
    expectOneScript(sent.queries);
    for (const i of items) {
      expect(await f.store.getMessageFromInbox(i.sessionId, i.cmid)).to.deep.equal({
        storedTs: f.clock.value,
      });
    }
  });

  it('on MySQL and SQLite: a closed session or a duplicate fails the transaction as an optimistic conflict', async function () {
    if (db().dialect === 'postgres') this.skip();
    const a = newSession();
    await f.store.registerNewSession(a);
    await f.store.storeMessageIdInInbox(a.sessionId, 'old');
    // Session ids are case-sensitive: the other-case id names no session.
    const other =
      a.sessionId.toLowerCase() === a.sessionId ? a.sessionId.toUpperCase() : a.sessionId.toLowerCase();
    for (const [what, items] of [
      [
        'closed session',
        [
          { sessionId: a.sessionId, cmid: 'x' },
          { sessionId: other, cmid: 'x' },
        ],
      ],
      [
        'duplicate',
        [
          { sessionId: a.sessionId, cmid: 'y' },
          { sessionId: a.sessionId, cmid: 'old' },
        ],
      ],
    ] as const) {
      const failure = await f.store
        .script(async (tx) => {
          expect(await f.store.storeMessageIdsInInboxAtCommit(items, tx)).to.equal(true);
        })
        .catch((e: unknown) => e);
      expect(causedByOptimisticConflict(failure), `${what}: ${String(failure)}`).to.be.true;
    }
    expect(await f.store.getMessageFromInbox(a.sessionId, 'x')).to.equal(null);
    expect(await f.store.getMessageFromInbox(a.sessionId, 'y')).to.equal(null);
  });

  it('does not apply to a (session, cmid) twice or more items than one statement takes', async () => {
    const a = newSession();
    await f.store.registerNewSession(a);
    const small = f.newStore({ nodeName: f.store.options.nodeName, inClauseChunk: 2 });
    await small.script(async (tx) => {
      const twice = [1, 1].map(() => ({ sessionId: a.sessionId, cmid: 'd' }));
      const three = ['1', '2', '3'].map((cmid) => ({ sessionId: a.sessionId, cmid }));
      expect(await small.storeMessageIdsInInboxAtCommit(twice, tx)).to.equal(false);
      expect(await small.storeMessageIdsInInboxAtCommit(three, tx)).to.equal(false);
    });
    expect(await f.store.getMessageFromInbox(a.sessionId, 'd')).to.equal(null);
  });
});
