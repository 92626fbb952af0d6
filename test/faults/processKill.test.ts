import { expect } from 'chai';
import { createTestDatabase, type TestDatabase } from '../../harness/databases.ts';
import { requireClusterServices, testAuth } from '../../harness/startTestCluster.ts';
import { serviceUrls } from '../../harness/services.ts';
import { createTestBroker, type TestBroker } from '../../harness/transports.ts';
import { runId } from '../../harness/runState.ts';
import { LoadRun, summary, until } from './LoadRun.ts';
import { NodeProcess } from '../../harness/NodeProcess.ts';

describe('Faults: kill -9 of one of two node processes mid-run [RabbitMQ + MariaDB]', function () {
  this.timeout(90_000);
  let db: TestDatabase | undefined;
  let broker: TestBroker | undefined;
  const nodes: NodeProcess[] = [];
  let load: LoadRun | undefined;

  before(async function () {
    this.timeout(90_000);
    await requireClusterServices(this, 'rabbitmq', 'mysql');
    db = await createTestDatabase('mysql');
    // Used for its prefix and its cleanup of the run's queues (the nodes run in child processes).
    broker = await createTestBroker('rabbitmq');
    for (const i of [1, 2]) {
      nodes.push(
        await NodeProcess.start({
          nodeName: `kill${i}_${runId}`,
          instanceName: `K${runId}`,
          amqpUrl: serviceUrls.rabbitmq,
          dbUrl: db.url,
          queuePrefix: broker.prefix,
        }),
      );
    }
  });

  after(async function () {
    this.timeout(30_000);
    await load?.close();
    await Promise.all(nodes.map((n) => n.stop()));
    await broker?.close();
    await db?.drop();
  });

  it('clients with both URLs fail over; every request answered exactly once', async () => {
    const [n1, n2] = nodes;
    load = new LoadRun({
      urls: [n1!.url, n2!.url],
      clients: 8,
      inflightPerClient: 4,
      idPrefix: `kill-${runId}`,
      authorization: testAuth('faults'),
    });
    load.start();
    await until(() => load!.resolved >= 200, '200 replies before the kill', 30_000);
    n1!.kill('SIGKILL');
    await n1!.exited;
    const atKill = load.resolved;
    await until(() => load!.resolved >= atKill + 300, '300 replies after the kill', 40_000);
    const acc = await load.finish();
    console.log(summary('kill -9 of node 1', acc));
    expect(acc.lost, 'lost').to.deep.equal([]);
    expect(acc.mismatched, 'mixed up').to.deep.equal([]);
    expect(acc.duplicateOutcomes, 'duplicate outcomes').to.deep.equal([]);
    expect(acc.duplicateWireReplies, 'duplicate replies on the wire').to.deep.equal([]);
    expect(acc.resolved).to.equal(acc.sent);
    // Every client ended up on node 2.
    expect(load.clients.every((c) => c.currentUrl === n2!.url)).to.equal(true);
  });
});
