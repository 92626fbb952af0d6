import { expect } from 'chai';
import { DataAccessError } from '../../../src/errors.ts';
import { RawClient } from '../../helpers/rawClient.ts';
import { testAuth } from '../../../harness/startTestCluster.ts';
import { connectSession, describeEachServerEnv } from './serverTestKit.ts';

// The attempt marks of delivered rows gather for `storeBatchWindowMs` (fewer transactions under load), and a
// session's next delivery waits for its previous rows' mark. With a window far longer than the wait below, the
// second reply only arrives in time if the poke that announces it commits the pending mark early.
const WINDOW_MS = 4000;

describeEachServerEnv(
  'Forwarding while an attempt mark is gathering',
  { nodes: 1, server: { timings: { storeBatchWindowMs: WINDOW_MS } } },
  (ctx) => {
    it('delivers the next reply of a session without waiting for the mark window', async () => {
      const { client } = await connectSession(ctx().cluster.nodes[0]!.url);
      for (const cmid of ['1', '2', '3']) {
        client.send([
          { t: 'REQUEST', eid: 'Test.single', tid: `t${cmid}`, cmid, msg: { number: 1, string: 's' } },
        ]);
        const resolve = await client.next((e) => e.t === 'RESOLVE' && e.cmid === cmid, WINDOW_MS / 2);
        expect(resolve.smid).to.be.a('string');
      }
      await client.close();
    });
  },
);

describeEachServerEnv('Forwarding a reply consumed by the node holding its session', { nodes: 1 }, (ctx) => {
  it('writes it from memory: no outbox fetch, no attempt mark', async () => {
    const node = ctx().cluster.nodes[0]!;
    const { client } = await connectSession(node.url);
    const outboxSql: string[] = [];
    const onQuery = (q: { sql: string }): void => {
      // A query may carry a whole transaction (`BEGIN;…;COMMIT` on MySQL/MariaDB): each statement on its own.
      for (const sql of q.sql.split(';')) {
        if (/mats_socket_outbox/i.test(sql)) outboxSql.push(sql.trim().split(' ')[0]!.toLowerCase());
      }
    };
    node.store.knex.on('query', onQuery);
    try {
      client.send([{ t: 'REQUEST', eid: 'Test.single', tid: 'm', cmid: 1, msg: { number: 1, string: 's' } }]);
      const resolve = await client.nextOfType('RESOLVE');
      client.send([{ t: 'ACK', smid: resolve.smid }]);
      await client.nextOfType('ACK2');
    } finally {
      node.store.knex.off('query', onQuery);
    }
    // Stored (insert) and removed at the client's ACK (delete); never read back or marked.
    expect(outboxSql).to.deep.equal(['insert', 'delete']);
    await client.close();
  });

  it('is still delivered when the outcome of its commit was lost (stored attempted, then a duplicate)', async () => {
    const node = ctx().cluster.nodes[0]!;
    const { client } = await connectSession(node.url);
    // The reply's first commit succeeds in the database, but the node hears of a lost connection: the Mats
    // message comes again and is a duplicate, while the row was stored attempted and written by nobody.
    const store = node.store;
    const script = store.script.bind(store);
    let lost = 0;
    store.script = (async (fn: Parameters<typeof script>[0], operation?: string) => {
      const result = await script(fn, operation);
      if (operation === 'reply group commit' && lost++ === 0) {
        throw new DataAccessError('Connection lost: The server closed the connection.');
      }
      return result;
    }) as typeof store.script;
    try {
      client.send([{ t: 'REQUEST', eid: 'Test.single', tid: 'l', cmid: 1, msg: { number: 1, string: 's' } }]);
      const resolve = await client.nextOfType('RESOLVE');
      expect(resolve.cmid).to.equal('1');
      expect(lost, 'the first reply commit was reported failed').to.be.above(0);
    } finally {
      store.script = script;
    }
    await client.close();
  });
});

describeEachServerEnv('Forwarding after a resume', { nodes: 1 }, (ctx) => {
  it('delivers a retried row and fresh rows in stored order (docs/protocol.md 9.5 #4)', async () => {
    const node = ctx().cluster.nodes[0]!;
    const { client, sid } = await connectSession(node.url);
    expect(await node.server.send(sid, 'o1', 'ClientSide.terminator', { n: 1 })).to.equal(true);
    await client.next((e) => e.t === 'SEND' && e.tid === 'o1');
    // Row 1 is attempted (delivery count 1) once it leaves the unattempted fetch; not ACKed.
    await waitUntil(async () => (await node.store.getMessagesFromOutbox(sid, 10)).length === 0);
    const deregistered = new Promise<void>((resolve) => {
      const off = node.server.on('sessionRemoved', (e) => {
        if (e.sessionId === sid && e.type === 'DEREGISTER') {
          off();
          resolve();
        }
      });
    });
    client.terminate();
    await deregistered;
    for (const tid of ['o2', 'o3'])
      expect(await node.server.send(sid, tid, 'ClientSide.terminator', { n: tid })).to.equal(true);

    const again = await RawClient.connect(node.url);
    try {
      await again.hello(testAuth('standard'), { sid });
      await again.next((e) => e.t === 'SEND' && e.tid === 'o3');
      await again.next((e) => e.t === 'SEND' && e.tid === 'o1');
      const frames = again.frames
        .map((f) => f.filter((e) => e.t === 'SEND').map((e) => e.tid))
        .filter((f) => f.length > 0);
      // The retried row goes alone in its frame (9.2), but not after rows stored later.
      expect(frames).to.deep.equal([['o1'], ['o2', 'o3']]);
    } finally {
      again.terminate();
    }
  });
});

async function waitUntil(check: () => Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
