import { expect } from 'chai';
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
