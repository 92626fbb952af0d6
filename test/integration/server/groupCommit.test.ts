import { expect } from 'chai';
import type { RawClient } from '../../helpers/rawClient.ts';
import { connectSession, describeEachServerEnv } from './serverTestKit.ts';

/**
 * Group commit on SQLite: better-sqlite3 runs a transaction synchronously, so no item ever arrives while a batch
 * commits, and a committer that commits at once when idle would give every event-loop turn its own transaction.
 * On SQLite the incoming and reply committers wait their window instead (src/server/messaging/GroupCommitter.ts).
 */
describeEachServerEnv(
  'group commit on a synchronous database driver',
  { nodes: 1, envs: ['in-memory + SQLite'], server: { timings: { groupCommitWindowMs: 300 } } },
  (ctx) => {
    it('requests of many sessions, sent in separate event-loop turns, share their transactions', async () => {
      const node = ctx().cluster.nodes[0]!;
      const clients: RawClient[] = [];
      for (let i = 0; i < 10; i++) clients.push((await connectSession(node.url, `gc${i}`)).client);
      const inserts = { inbox: 0, outbox: 0 };
      const count = (q: { sql?: string }): void => {
        if (q.sql?.startsWith('insert into `mats_socket_inbox`')) inserts.inbox++;
        if (q.sql?.startsWith('insert into `mats_socket_outbox`')) inserts.outbox++;
      };
      node.store.knex.on('query', count);
      try {
        for (const [i, client] of clients.entries()) {
          client.send([{ t: 'REQUEST', eid: 'Test.single', tid: `t${i}`, cmid: 1, msg: { number: i } }]);
          await new Promise((r) => setImmediate(r));
        }
        const replies = await Promise.all(clients.map((c) => c.next((e) => e.t === 'RESOLVE', 5000)));
        expect(
          replies.map((r) => (r.msg as { number2: number }).number2).sort((a, b) => a - b),
        ).to.deep.equal([0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
        // One per turn (10 each) if the committers went at once; one or two batches each with the window.
        expect(inserts.inbox, 'inbox insert statements').to.be.at.most(2);
        expect(inserts.outbox, 'outbox insert statements (replies)').to.be.at.most(2);
      } finally {
        node.store.knex.off('query', count);
        await Promise.all(clients.map((c) => c.close(4000, 'done')));
      }
    });
  },
);
