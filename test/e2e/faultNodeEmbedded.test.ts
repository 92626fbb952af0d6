import { expect } from 'chai';
import type { EchoReply } from '../../harness/faultEndpoints.ts';
import { createTestDatabase, type TestDatabase } from '../../harness/databases.ts';
import { NodeProcess } from '../../harness/NodeProcess.ts';
import { runId } from '../../harness/runState.ts';
import { testAuth } from '../../harness/startTestCluster.ts';
import { useClientPool } from '../helpers/clientKit.ts';

/**
 * The benchmark's embedded node: `harness/faultNodeProgram.ts` without `amqpUrl` runs the CLI's embedded default
 * (in-process broker, SQLite file) in a child process, and reports what it sent to its database and broker.
 */
describe('fault node process on the embedded default (in-process broker + SQLite file)', function () {
  this.timeout(60_000);
  const pool = useClientPool();
  let db: TestDatabase | undefined;
  let node: NodeProcess | undefined;

  before(async () => {
    db = await createTestDatabase('sqlite');
    node = await NodeProcess.start({
      nodeName: `embedded_${runId}`,
      instanceName: `E${runId}`,
      dbUrl: db.url,
      queuePrefix: 'mats.',
    });
  });

  after(async () => {
    await node?.stop();
    await db?.drop();
  });

  it('answers Fault.echo, counting the statements and the broker messages of the round trip', async () => {
    const start = await node!.counters();
    const client = pool.create(node!.url, testAuth('embedded-user'));
    const reply = await client.request<EchoReply>('Fault.echo', 'trace1', { id: 'e1' });
    expect(reply.data).to.deep.equal({ id: 'e1', node: `embedded_${runId}` });
    const end = await node!.counters();
    // The forward to the backend and its reply went through the broker; the session, inbox and outbox through
    // SQLite.
    expect(end.brokerPublishes - start.brokerPublishes).to.be.at.least(2);
    expect(end.dbRoundTrips - start.dbRoundTrips).to.be.at.least(3);
  });
});
