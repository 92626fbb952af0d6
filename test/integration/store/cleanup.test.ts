import { expect } from 'chai';
import { describeEachDatabase } from '../../../harness/databases.ts';
import { newSession, useStoreFixture } from './storeFixture.ts';

const HOUR = 3_600_000;

describeEachDatabase('ClusterStoreAndForward session timeout and remnant scavenger', (db) => {
  const f = useStoreFixture(db, {
    scavengeIntervalMs: 10 * HOUR,
    scavengeOverlapMs: 10 * 60_000,
    scavengeMinAgeMs: 10 * 60_000,
  });

  // These jobs act on whole tables, so each test starts from empty ones.
  beforeEach(async () => {
    for (const t of ['mats_socket_session', 'mats_socket_inbox', 'mats_socket_outbox'])
      await db().knex(t).delete();
  });

  async function sessionWithBoxes(): Promise<string> {
    const s = newSession();
    await f.store.registerNewSession(s);
    await f.store.storeMessageIdInInbox(s.sessionId, 'c');
    await f.store.storeMessageInOutbox({
      sessionId: s.sessionId,
      smid: 'm',
      traceId: 't',
      type: 'SEND',
      envelope: '{}',
    });
    return s.sessionId;
  }

  async function boxRows(sessionId: string): Promise<number> {
    const [i] = await db().knex('mats_socket_inbox').where('session_id', sessionId).count({ n: '*' });
    const [o] = await db().knex('mats_socket_outbox').where('session_id', sessionId).count({ n: '*' });
    return Number(i!.n) + Number(o!.n);
  }

  describe('#timeoutSessions()', () => {
    it('removes exactly the sessions not live since the threshold, with their box rows', async () => {
      const small = f.newStore({ inClauseChunk: 2 });
      const old = [await sessionWithBoxes(), await sessionWithBoxes(), await sessionWithBoxes()];
      const refreshed = await sessionWithBoxes();
      f.clock.advance(HOUR);
      await f.store.notifySessionLiveliness([refreshed]);
      const threshold = f.clock.value;
      const fresh = await sessionWithBoxes();
      f.clock.advance(HOUR);
      const timedOut = await small.timeoutSessions(threshold);
      expect(timedOut).to.have.members(old);
      expect(timedOut).to.have.length(3);
      for (const s of old) {
        expect(await f.store.isSessionExists(s)).to.be.false;
        expect(await boxRows(s)).to.equal(0);
      }
      for (const s of [refreshed, fresh]) {
        expect(await f.store.isSessionExists(s)).to.be.true;
        expect(await boxRows(s)).to.equal(2);
      }
      expect(await small.timeoutSessions(threshold)).to.deep.equal([]);
    });

    it('reports each session exactly once when several nodes time out concurrently', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 30; i++) ids.push(await sessionWithBoxes());
      f.clock.advance(HOUR);
      const nodes = [0, 1, 2, 3].map((i) =>
        f.newStore({ nodeName: `timeout-${i}`, inClauseChunk: 7 }, f.racerKnex()),
      );
      const results = await Promise.all(nodes.map((n) => n.timeoutSessions(f.clock.value)));
      const all = results.flat();
      expect(all).to.have.length(30);
      expect(new Set(all).size).to.equal(30);
      expect(all).to.have.members(ids);
      for (const s of ids) expect(await boxRows(s)).to.equal(0);
    });
  });

  describe('#scavengeSessionRemnants()', () => {
    async function orphanBoxRows(sessionId: string, storedTs: number): Promise<void> {
      await db()
        .knex('mats_socket_inbox')
        .insert({ session_id: sessionId, cmid: 'o', stored_timestamp: storedTs });
      await db().knex('mats_socket_outbox').insert({
        session_id: sessionId,
        smid: 'o',
        trace_id: 't',
        type: 'SEND',
        stored_timestamp: storedTs,
        delivery_count: 0,
        envelope: '{}',
      });
    }

    it('deletes orphaned rows inside its window only, and never rows of live sessions', async () => {
      const scav = f.newStore({
        scavengeIntervalMs: 10 * HOUR,
        scavengeOverlapMs: 600_000,
        scavengeMinAgeMs: 600_000,
      });
      const now = f.clock.value;
      const live = await sessionWithBoxes();
      await db()
        .knex('mats_socket_inbox')
        .where('session_id', live)
        .update({ stored_timestamp: now - HOUR });
      await orphanBoxRows('orphan-in-window', now - HOUR);
      await orphanBoxRows('orphan-too-young', now - 60_000);
      await orphanBoxRows('orphan-too-old', now - 30 * HOUR);

      // First run: looks back 2 × 10 h, up to now − 10 min.
      expect(await scav.scavengeSessionRemnants()).to.equal(2);
      expect(await boxRows('orphan-in-window')).to.equal(0);
      expect(await boxRows('orphan-too-young')).to.equal(2);
      expect(await boxRows('orphan-too-old')).to.equal(2);
      expect(await boxRows(live)).to.equal(2);

      // Next run, 1 h later: the window starts 10 min before the previous upper bound.
      f.clock.advance(HOUR);
      await orphanBoxRows('orphan-overlap', now - 15 * 60_000);
      await orphanBoxRows('orphan-before-window', now - 25 * 60_000);
      expect(await scav.scavengeSessionRemnants()).to.equal(4);
      expect(await boxRows('orphan-too-young')).to.equal(0);
      expect(await boxRows('orphan-overlap')).to.equal(0);
      expect(await boxRows('orphan-before-window')).to.equal(2);
      expect(await boxRows('orphan-too-old')).to.equal(2);
      expect(await boxRows(live)).to.equal(2);
    });

    it('handles more orphaned sessions than one IN-list chunk', async () => {
      const scav = f.newStore({ inClauseChunk: 3, scavengeIntervalMs: 10 * HOUR, scavengeMinAgeMs: 0 });
      for (let i = 0; i < 8; i++) await orphanBoxRows(`orphan-${i}`, f.clock.value - HOUR);
      f.clock.advance(1);
      expect(await scav.scavengeSessionRemnants()).to.equal(16);
    });
  });
});
