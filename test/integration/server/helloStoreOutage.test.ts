import { expect } from 'chai';
import { DataAccessError } from '../../../src/errors.ts';
import type { SqlClusterStore } from '../../../src/store/SqlClusterStore.ts';
import { useClientPool } from '../../helpers/clientKit.ts';
import { RawClient } from '../../helpers/rawClient.ts';
import { testAuth } from '../../../harness/startTestCluster.ts';
import { describeEachServerEnv } from './serverTestKit.ts';

/** Makes the next `times` calls of a store method fail as a database outage would. */
function failNext<K extends 'registerNewSessionWithinUserLimit' | 'registerResumedSessions'>(
  store: SqlClusterStore,
  method: K,
  times: number,
): () => number {
  const original = store[method].bind(store) as (...args: unknown[]) => Promise<unknown>;
  let failed = 0;
  (store as unknown as Record<K, (...args: unknown[]) => Promise<unknown>>)[method] = (...args) => {
    if (failed < times) {
      failed++;
      return Promise.reject(new DataAccessError('connect ECONNREFUSED 127.0.0.1:3306 (simulated outage)'));
    }
    return original(...args);
  };
  return () => failed;
}

describeEachServerEnv('HELLO while the session store is unreachable', {}, (ctx) => {
  const pool = useClientPool();

  it('closes with 1012 (reconnect), not 1011 (session over)', async () => {
    const node = ctx().cluster.nodes[0]!;
    failNext(node.store, 'registerNewSessionWithinUserLimit', 1);
    const raw = await RawClient.connect(node.url);
    raw.send([{ t: 'HELLO', clv: 'raw', an: 'a', av: '1', auth: testAuth('outage') }]);
    const closed = await raw.closed();
    expect(closed.code).to.equal(1012);
  });

  it('a client keeps its request through the outage: it reconnects and gets the reply once', async () => {
    const node = ctx().cluster.nodes[0]!;
    const failures = failNext(node.store, 'registerNewSessionWithinUserLimit', 3);
    const client = pool.create(node.url, testAuth('outage'));
    const reply = await client.request(
      'Test.single',
      'outage',
      { number: 7, string: 'x' },
      { timeout: 10_000 },
    );
    expect(reply.type).to.equal('RESOLVE');
    expect(failures()).to.equal(3);
  });

  it('a resuming client keeps its session through the outage', async () => {
    const node = ctx().cluster.nodes[0]!;
    const client = pool.create(node.url, testAuth('outage'));
    await client.request('Test.single', 'before', { number: 1, string: 'a' });
    const sid = client.sessionId;
    failNext(node.store, 'registerResumedSessions', 2);
    client.reconnect('test: drop the connection');
    const reply = await client.request(
      'Test.single',
      'after',
      { number: 2, string: 'b' },
      { timeout: 10_000 },
    );
    expect(reply.type).to.equal('RESOLVE');
    expect(client.sessionId).to.equal(sid);
  });
});
