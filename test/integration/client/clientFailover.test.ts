import { expect } from 'chai';
import type { InitiationProcessedEvent } from '../../../src/client/clientEvents.ts';
import { dummyAuthValue } from '../../../src/cli/compat/DummyAuth.ts';
import { eventually, nextEvent, useClientPool } from '../../helpers/clientKit.ts';
import { RawClient } from '../../helpers/rawClient.ts';
import { describeEachClientEnv } from './clientTestKit.ts';

describeEachClientEnv('MatsSocketClient failover to another node', { nodes: 3 }, (ctx) => {
  const pool = useClientPool();

  it('resuming the session on another node closes the old connection with 4003 (takeover across nodes)', async () => {
    const [n1, n2] = ctx().cluster.nodes;
    const first = pool.create(n1!.url, dummyAuthValue('standard'));
    await first.send('Test.ignoreInIncomingHandler', 'start', {});
    const sid = first.sessionId!;
    // A second client resuming the same session on node 2: node 1 must close the old connection with 4003.
    const lost = nextEvent(first, 'connection', (e) => e.type === 'LOST_CONNECTION');
    const raw = await RawClient.connect(n2!.url);
    try {
      const welcome = await raw.hello(dummyAuthValue('standard'), { sid });
      expect(welcome).to.include({ sid, desc: 'reconnected - existing in store' });
      const event = await lost;
      expect(event.type === 'LOST_CONNECTION' && event.code).to.equal(4003);
    } finally {
      await raw.close(1000, 'done');
    }
  });

  it('the holding node stops (1012) with requests pending: the client resumes on the next node, each reply exactly once', async () => {
    const { cluster, counter } = ctx();
    const [, n2, n3] = cluster.nodes;
    // Node 2 is stopped; node 3 takes over. (Node 1 is used by the other test.)
    const c = pool.create([n2!.url, n3!.url], dummyAuthValue('standard'));
    const processed: InitiationProcessedEvent[] = [];
    c.on('initiation:processed', (e) => processed.push(e));
    const traceIds = [0, 1, 2, 3, 4].map((i) => `failover-${i}`);
    const replies = traceIds.map((tid) =>
      c.request<{ runs: number; node: string }>('Client.counted', tid, { sleepTime: 300 }),
    );
    await eventually(() => c.sessionId !== undefined && c.outstandingInitiations === 0, {
      what: 'the ACKs on node 2',
    });
    expect(c.currentUrl).to.equal(n2!.url);
    const resumedElsewhere = nextEvent(
      c,
      'connection',
      (e) => e.type === 'SESSION_ESTABLISHED' && e.resumed && e.url === n3!.url,
      10_000,
    );
    const lost = nextEvent(c, 'connection', (e) => e.type === 'LOST_CONNECTION', 10_000);
    const stopping = n2!.server.stop(300);
    const lostEvent = await lost;
    expect(lostEvent.type === 'LOST_CONNECTION' && lostEvent.code).to.equal(1012);
    await resumedElsewhere;
    await stopping;
    const results = await Promise.all(replies);
    expect(results.map((r) => r.data.runs)).to.deep.equal([1, 1, 1, 1, 1]);
    expect(traceIds.map((tid) => counter.count(tid))).to.deep.equal([1, 1, 1, 1, 1]);
    expect(c.currentUrl).to.equal(n3!.url);
    // One outcome per request, also after everything redelivered on node 3 had a chance to arrive.
    await c.request('Test.resolveInIncomingHandler', 'barrier', {});
    const perTrace = traceIds.map((tid) => processed.filter((e) => e.traceId === tid).length);
    expect(perTrace).to.deep.equal([1, 1, 1, 1, 1]);
  });
});
