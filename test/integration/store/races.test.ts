import { expect } from 'chai';
import type { Knex } from 'knex';
import { SessionNotFoundError } from '../../../src/errors.ts';
import type { SqlClusterStore } from '../../../src/store/SqlClusterStore.ts';
import { describeEachDatabase } from '../../../harness/databases.ts';
import { expectRejection, newSession, useStoreFixture } from './storeFixture.ts';

describeEachDatabase('ClusterStoreAndForward races with session close', (db) => {
  const f = useStoreFixture(db);

  async function boxRows(sessionId: string): Promise<number> {
    const [i] = await db().knex('mats_socket_inbox').where('session_id', sessionId).count({ n: '*' });
    const [o] = await db().knex('mats_socket_outbox').where('session_id', sessionId).count({ n: '*' });
    return Number(i!.n) + Number(o!.n);
  }

  /** Runs `action` when `knex` sends the first query matching `pattern`. */
  function onFirstQuery(knex: Knex, pattern: RegExp, action: () => Promise<unknown>): () => Promise<unknown> {
    let fired: Promise<unknown> | undefined;
    const listener = (q: { sql: string }) => {
      if (!fired && pattern.test(q.sql)) fired = action();
    };
    knex.on('query', listener);
    return async () => {
      knex.off('query', listener);
      return fired;
    };
  }

  it('writer locked first: the close waits for its commit, then deletes what it wrote', async function () {
    if (db().dialect === 'sqlite') this.skip(); // one connection: transactions cannot interleave
    const s = newSession();
    await f.store.registerNewSession(s);
    const writerKnex = db().connect();
    const writer = f.newStore({}, writerKnex);
    const trx = await writerKnex.transaction();
    expect(await writer.lockSessionForShare(s.sessionId, trx)).to.deep.equal({
      nodename: f.store.options.nodeName,
      connectionId: s.connectionId,
    });
    await writer.storeMessageInOutbox(
      { sessionId: s.sessionId, smid: 'w', traceId: 't', type: 'SEND', envelope: '{}' },
      trx,
    );
    await writer.storeMessageIdInInbox(s.sessionId, 'c', trx);
    // Commit the writer once the close has sent its DELETE (which blocks on the writer's shared lock).
    const done = onFirstQuery(f.store.knex, /^delete from .mats_socket_session/i, () => trx.commit());
    expect(await f.store.closeSession(s.sessionId)).to.be.true;
    await done();
    expect(await boxRows(s.sessionId)).to.equal(0);
  });

  it('close locked first: the writer waits, then finds no session and writes nothing', async function () {
    if (db().dialect === 'sqlite') this.skip();
    const s = newSession();
    await f.store.registerNewSession(s);
    const writerKnex = db().connect();
    const writer = f.newStore({}, writerKnex);
    const closeTrx = await f.store.knex.transaction();
    expect(await f.store.closeSession(s.sessionId, closeTrx)).to.be.true;
    const done = onFirstQuery(writerKnex, /^select .* from .mats_socket_session/i, () => closeTrx.commit());
    const res = await writer.storeMessageInOutbox({
      sessionId: s.sessionId,
      smid: 'w',
      traceId: 't',
      type: 'SEND',
      envelope: '{}',
    });
    await done();
    expect(res).to.deep.equal({ sessionExists: false, currentNode: null });
    await expectRejection(writer.storeMessageIdInInbox(s.sessionId, 'c'), SessionNotFoundError);
    expect(await boxRows(s.sessionId)).to.equal(0);
  });

  it('many concurrent writers (single and batch) and closes leave no orphan rows', async () => {
    const stores: SqlClusterStore[] = [0, 1, 2, 3].map((i) =>
      f.newStore({ nodeName: `w-${i}` }, f.racerKnex()),
    );
    const sessions = Array.from({ length: 12 }, () => newSession());
    for (const s of sessions) await f.store.registerNewSession(s);
    const ops: Promise<unknown>[] = [];
    sessions.forEach((s, si) => {
      for (let k = 0; k < 6; k++) {
        const st = stores[(si + k) % stores.length]!;
        const smid = `m${k}`;
        if (k % 3 === 0) {
          ops.push(
            st.storeMessageInOutbox({
              sessionId: s.sessionId,
              smid,
              traceId: 't',
              type: 'SEND',
              envelope: '{}',
            }),
          );
        } else if (k % 3 === 1) {
          ops.push(
            st.storeMessageIdInInbox(s.sessionId, smid).catch((e: unknown) => {
              if (!(e instanceof SessionNotFoundError)) throw e;
            }),
          );
        } else {
          ops.push(
            st.storeMessagesInOutbox([
              { sessionId: s.sessionId, smid, traceId: 't', type: 'SEND', envelope: '{}' },
              {
                sessionId: sessions[(si + 1) % sessions.length]!.sessionId,
                smid: `x${si}`,
                traceId: 't',
                type: 'SEND',
                envelope: '{}',
              },
            ]),
          );
          ops.push(st.storeMessageIdsInInbox([{ sessionId: s.sessionId, cmid: `b${k}` }]));
        }
        if (k === 2) ops.push(stores[si % stores.length]!.closeSession(s.sessionId));
      }
    });
    await Promise.all(ops);
    for (const s of sessions) {
      expect(await f.store.isSessionExists(s.sessionId)).to.be.false;
      expect(await boxRows(s.sessionId), s.sessionId).to.equal(0);
    }
  });

  it('resume after close fails with SessionNotFoundError and never re-creates the session', async () => {
    const s = newSession();
    await f.store.registerNewSession(s);
    const other = f.newStore({}, f.racerKnex());
    const [closed, resumed] = await Promise.allSettled([
      f.store.closeSession(s.sessionId),
      other.registerResumedSession({ ...s, connectionId: 'again' }),
    ]);
    expect(closed.status).to.equal('fulfilled');
    if (resumed.status === 'rejected') expect(resumed.reason).to.be.instanceOf(SessionNotFoundError);
    expect(await f.store.isSessionExists(s.sessionId)).to.be.false;
    await expectRejection(other.registerResumedSession({ ...s, connectionId: 'late' }), SessionNotFoundError);
    expect(await f.store.isSessionExists(s.sessionId)).to.be.false;
  });
});
