import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { expect } from 'chai';
import { ConfigError, ErrorCode, NodeNameInUseError } from '../../../src/errors.ts';
import { migrateLatest } from '../../../src/store/migrate.ts';
import type { SqlClusterStore } from '../../../src/store/SqlClusterStore.ts';
import { randomId } from '../../../src/util/ids.ts';
import { eventually } from '../../helpers/clientKit.ts';
import { describeEachDatabase } from '../../../harness/databases.ts';
import { expectRejection, newSession, useStoreFixture } from './storeFixture.ts';

/** No heartbeat during a test unless it asks for one: liveliness then moves only with the test clock. */
const QUIET = { nodeLivelinessIntervalMs: 3_600_000, nodeDeadAfterMs: 7_200_000 };

describeEachDatabase('ClusterStoreAndForward node name (boot)', (db) => {
  const f = useStoreFixture(db);
  const opened: SqlClusterStore[] = [];

  before(async () => {
    // boot() verifies the Mats layer's schema too.
    await migrateLatest(db().knex);
  });

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((s) => s.close()));
  });

  function node(nodeName: string, more: Parameters<typeof f.newStore>[0] = {}): SqlClusterStore {
    const store = f.newStore({ nodeName, ...QUIET, ...more });
    opened.push(store);
    return store;
  }

  /** Node `a` booted with one live session. */
  async function liveNode(nodeName: string): Promise<{ a: SqlClusterStore; sessionId: string }> {
    const a = node(nodeName);
    await a.boot();
    const s = newSession({ connectionId: 'live' });
    await a.registerNewSession(s);
    return { a, sessionId: s.sessionId };
  }

  it('refuses to boot under the name of a live node, and leaves its sessions alone', async () => {
    const name = `n-${randomId(6)}`;
    const { a, sessionId } = await liveNode(name);
    f.clock.advance(QUIET.nodeDeadAfterMs - 1);
    const err = await expectRejection(node(name).boot(), NodeNameInUseError, ErrorCode.CONFIG_INVALID);
    expect(err).to.be.instanceOf(ConfigError).with.property('field', 'nodeName');
    expect(err.message).to.include(name).and.include('choose another node name, or stop the other node');
    expect(await a.getCurrentRegisteredNodeForSession(sessionId)).to.deep.equal({
      sessionId,
      nodename: name,
      connectionId: 'live',
    });
  });

  it('lets a node take the name of a dead node (liveliness older than nodeDeadAfterMs)', async () => {
    const name = `n-${randomId(6)}`;
    const { a, sessionId } = await liveNode(name);
    f.clock.advance(QUIET.nodeDeadAfterMs);
    const b = node(name);
    await b.boot();
    // The dead node's registrations are stale: deregistered, the session itself kept.
    expect(await b.getCurrentRegisteredNodeForSession(sessionId)).to.equal(null);
    expect(await a.isSessionExists(sessionId)).to.be.true;
  });

  it('lets a node restarted right after a crash take its name: the holder was a process on this host that is gone', async () => {
    const name = `n-${randomId(6)}`;
    const { a, sessionId } = await liveNode(name);
    // The holder's row as a killed process (kill -9) leaves it: recent liveliness, a pid that no longer runs.
    const gone = spawnSync(process.execPath, ['-e', '0']).pid;
    await db()
      .knex('mats_socket_node')
      .where('nodename', name)
      .update({ incarnation: `${hostname().slice(0, 40)}/${gone}/x` });
    await node(name).boot();
    expect(await a.isSessionExists(sessionId)).to.be.true;
    // A live holder on this host (this process) still keeps its name.
    const other = `n-${randomId(6)}`;
    await liveNode(other);
    await expectRejection(node(other).boot(), NodeNameInUseError, ErrorCode.CONFIG_INVALID);
  });

  it('a graceful close frees the name at once; another name is never affected', async () => {
    const name = `n-${randomId(6)}`;
    const { a, sessionId } = await liveNode(name);
    await node(`${name}-other`).boot();
    expect(await a.getCurrentRegisteredNodeForSession(sessionId)).to.not.equal(null);
    await a.close();
    await node(name).boot();
  });

  it('the heartbeat keeps a node alive beyond nodeDeadAfterMs', async () => {
    const name = `n-${randomId(6)}`;
    await node(name, { nodeLivelinessIntervalMs: 10, nodeDeadAfterMs: 1000 }).boot();
    const seen = f.clock.advance(5000);
    await eventually(
      async () => {
        const row = (await db().knex('mats_socket_node').where('nodename', name).first()) as
          { liveliness_timestamp: number | string } | undefined;
        return Number(row?.liveliness_timestamp) === seen;
      },
      { what: 'a heartbeat at the advanced clock' },
    );
    await expectRejection(
      node(name, { nodeDeadAfterMs: 1000, nodeLivelinessIntervalMs: 10 }).boot(),
      NodeNameInUseError,
    );
  });

  it('getNodes: each node with start, liveliness, alive and its registered sessions; names only sessions carry', async () => {
    const name = `n-${randomId(6)}`;
    const startedTs = f.clock.value;
    const { a } = await liveNode(name);
    await a.registerNewSession(newSession());
    const idle = node(`${name}-idle`);
    await idle.boot();
    // A node that died long ago, its row still there, with a session still registered to it.
    const dead = node(`${name}-dead`);
    await dead.boot();
    const stale = newSession();
    await dead.registerNewSession(stale);
    // A name that only a session carries (its node row deleted by hand).
    await db()
      .knex('mats_socket_session')
      .insert({
        session_id: `orphan-${randomId(8)}`,
        nodename: `${name}-rowless`,
        connection_id: 'c',
        user_id: 'u',
        client_lib: 'x',
        app_name: 'a',
        app_version: '1',
        created_timestamp: startedTs,
        liveliness_timestamp: startedTs,
      });
    f.clock.advance(QUIET.nodeDeadAfterMs - 1);
    await a.close().then(() => opened.splice(opened.indexOf(a), 1));
    const b = node(name);
    await b.boot();
    await b.registerNewSession(newSession());
    await db()
      .knex('mats_socket_node')
      .where('nodename', `${name}-dead`)
      .update({ liveliness_timestamp: startedTs - QUIET.nodeDeadAfterMs });

    const mine = (await b.getNodes()).filter((n) => n.nodeName.startsWith(name));
    expect(mine).to.deep.equal([
      { nodeName: name, startedTs: f.clock.value, livelinessTs: f.clock.value, alive: true, sessions: 1 },
      {
        nodeName: `${name}-dead`,
        startedTs,
        livelinessTs: startedTs - QUIET.nodeDeadAfterMs,
        alive: false,
        sessions: 1,
      },
      { nodeName: `${name}-idle`, startedTs, livelinessTs: startedTs, alive: true, sessions: 0 },
      { nodeName: `${name}-rowless`, startedTs: null, livelinessTs: null, alive: false, sessions: 1 },
    ]);
  });

  it('claimReplyQueue: the lowest no live node holds, else the least held; a stopped or dead node frees its own', async () => {
    const name = `q-${randomId(6)}`;
    const booted = async (suffix: string): Promise<SqlClusterStore> => {
      const s = node(`${name}-${suffix}`);
      await s.boot();
      return s;
    };
    const a = await booted('a');
    const b = await booted('b');
    expect(await a.claimReplyQueue(2)).to.equal(0);
    expect(await b.claimReplyQueue(2)).to.equal(1);
    const c = await booted('c');
    // Both held once: c shares the lowest.
    expect(await c.claimReplyQueue(2)).to.equal(0);
    // Stopped nodes hold nothing (0 would be held twice, 1 once, 2 never, if they did).
    await a.close();
    await c.close();
    const d = await booted('d');
    expect(await d.claimReplyQueue(3)).to.equal(0);
    // Dead nodes (no heartbeat here) hold nothing either: b's 1 and d's 0 are free again.
    f.clock.advance(QUIET.nodeDeadAfterMs);
    const e = await booted('e');
    expect(await e.claimReplyQueue(3)).to.equal(0);
  });

  it('rejects nodeDeadAfterMs not above nodeLivelinessIntervalMs', () => {
    expect(() => f.newStore({ nodeLivelinessIntervalMs: 1000, nodeDeadAfterMs: 1000 }))
      .to.throw(ConfigError)
      .with.property('field', 'nodeDeadAfterMs');
  });
});
