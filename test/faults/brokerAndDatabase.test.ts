import { expect } from 'chai';
import { createTestDatabase, type TestDatabase } from '../../harness/databases.ts';
import {
  requireClusterServices,
  startTestCluster,
  testAuth,
  type TestCluster,
} from '../../harness/startTestCluster.ts';
import { runId } from '../../harness/runState.ts';
import { BackendRuns, registerFaultEndpoints } from '../../harness/faultEndpoints.ts';
import { killDatabaseConnections } from './faultKit.ts';
import { expectExactlyOnce, LoadRun, summary, until } from './LoadRun.ts';

describe('Faults: RabbitMQ connections and MariaDB connections killed mid-run [RabbitMQ + MariaDB]', function () {
  this.timeout(60_000);
  let db: TestDatabase | undefined;
  let cluster: TestCluster | undefined;
  const runs = new BackendRuns();
  let load: LoadRun | undefined;

  before(async function () {
    await requireClusterServices(this, 'rabbitmq', 'mysql');
    db = await createTestDatabase('mysql');
    cluster = await startTestCluster({
      nodes: 2,
      db,
      transport: 'rabbitmq',
      endpoints: registerFaultEndpoints(runs),
    });
  });

  afterEach(async () => {
    await load?.close();
    load = undefined;
  });

  after(async () => {
    await cluster?.stop();
    await db?.drop();
  });

  it('every RabbitMQ connection of both nodes closed by the broker mid-run: zero lost, zero duplicated', async () => {
    const c = cluster!;
    load = new LoadRun({
      urls: c.nodes.map((n) => n.url),
      clients: 6,
      inflightPerClient: 4,
      idPrefix: `amqp-${runId}`,
      authorization: testAuth('faults'),
    });
    load.start();
    await until(() => load!.resolved >= 100, '100 replies before the fault');
    await c.broker.dropConnections();
    const atDrop = load.resolved;
    await until(() => load!.resolved >= atDrop + 200, '200 replies after the broker recovered', 30_000);
    const acc = await load.finish();
    console.log(summary('RabbitMQ connections dropped', acc));
    expectExactlyOnce(acc);
    expect(acc.sent).to.be.greaterThan(300);
  });

  it('every MariaDB connection of the run killed mid-run: clients recover (RETRY), zero lost, zero duplicated', async () => {
    const c = cluster!;
    load = new LoadRun({
      urls: c.nodes.map((n) => n.url),
      clients: 6,
      inflightPerClient: 4,
      idPrefix: `db-${runId}`,
      authorization: testAuth('faults'),
    });
    load.start();
    await until(() => load!.resolved >= 100, '100 replies before the fault');
    let killed = 0;
    // Twice, a little apart: connections the pools open in between are killed too.
    for (let i = 0; i < 2; i++) {
      killed += await killDatabaseConnections(c.db);
      const before = load.resolved;
      await until(() => load!.resolved >= before + 50, '50 replies after killing the connections', 30_000);
    }
    expect(killed).to.be.greaterThan(0);
    const acc = await load.finish();
    console.log(summary(`${killed} MariaDB connections killed`, acc));
    expectExactlyOnce(acc);
  });
});
