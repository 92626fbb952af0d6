import { expect } from 'chai';
import type { Knex } from 'knex';
import { createDatabase } from '../../src/store/database.ts';
import { createTestDatabase, type TestDatabase } from '../../harness/databases.ts';
import {
  requireClusterServices,
  startTestCluster,
  testAuth,
  type TestCluster,
} from '../../harness/startTestCluster.ts';
import { serviceUrls } from '../../harness/services.ts';
import { runId } from '../../harness/runState.ts';
import { BackendRuns, registerFaultEndpoints, type EchoReply } from '../../harness/faultEndpoints.ts';
import { expectExactlyOnce, LoadRun, summary, until, type LoadAccounting } from './LoadRun.ts';
import { OutageProxy } from './OutageProxy.ts';

/** How long a service is gone: longer than the Mats redelivery budget (6 attempts, 250 ms apart). */
const OUTAGE_MS = 3000;

/** Requests from 6 clients (4 in flight each) before, through and after `proxy.outage()`; the accounting. */
async function loadThroughOutage(
  cluster: TestCluster,
  proxy: OutageProxy,
  what: string,
  track: (load: LoadRun) => void,
  whileDown?: (load: LoadRun) => Promise<void>,
): Promise<LoadAccounting> {
  const load = new LoadRun({
    urls: cluster.nodes.map((n) => n.url),
    clients: 6,
    inflightPerClient: 4,
    idPrefix: `${what}-${runId}`,
    authorization: testAuth('faults'),
    requestTimeoutMs: 60_000,
  });
  track(load);
  load.start();
  await until(() => load.resolved >= 100, '100 replies before the outage');
  let during: Promise<void> | undefined;
  await proxy.outage(OUTAGE_MS, () => {
    during = whileDown?.(load);
    // Awaited below, after the outage; until then a failure must not count as unhandled.
    during?.catch(() => undefined);
  });
  await during;
  const after = load.resolved;
  await until(() => load.resolved >= after + 200, '200 replies after the outage', 45_000);
  const acc = await load.finish();
  console.log(summary(`${what} unreachable for ${OUTAGE_MS} ms`, acc));
  expectExactlyOnce(acc);
  return acc;
}

describe('Faults: the database restarts mid-run (connections cut, refused for 3 s) [RabbitMQ + MariaDB]', function () {
  this.timeout(90_000);
  let db: TestDatabase | undefined;
  let proxy: OutageProxy | undefined;
  let cluster: TestCluster | undefined;
  const knexes: Knex[] = [];
  let load: LoadRun | undefined;

  before(async function () {
    await requireClusterServices(this, 'rabbitmq', 'mysql');
    db = await createTestDatabase('mysql');
    const direct = new URL(db.url);
    proxy = await OutageProxy.start({ host: direct.hostname, port: Number(direct.port || 3306) });
    const viaProxy = new URL(db.url);
    viaProxy.port = String(proxy.port);
    cluster = await startTestCluster({
      nodes: 2,
      db: {
        ...db,
        url: viaProxy.toString(),
        connect: () => {
          const knex = createDatabase(viaProxy.toString(), { poolMax: 8, connectTimeoutMs: 2000 });
          knexes.push(knex);
          return knex;
        },
      },
      transport: 'rabbitmq',
      endpoints: registerFaultEndpoints(new BackendRuns()),
      // The production redelivery policy, so the outage outlasts it.
      factory: { maxDeliveryAttempts: 6, retryDelayMs: 250 },
    });
  });

  after(async () => {
    await load?.close();
    await cluster?.stop();
    await Promise.allSettled(knexes.map((k) => k.destroy()));
    await proxy?.close();
    await db?.drop();
  });

  it('clients get RETRY and recover; every request answered exactly once, every ACK completed', async () => {
    // The load's requests in flight may all be past their incoming commit when the database goes (waiting in the
    // backend or reply stages, which keep them): a request sent during the outage certainly meets it.
    const probe = async (l: LoadRun): Promise<void> => {
      const id = `probe-${runId}`;
      const reply = await l.clients[0]!.request<EchoReply>('Fault.echo', id, { id });
      expect(reply.data.id).to.equal(id);
    };
    const acc = await loadThroughOutage(cluster!, proxy!, 'database', (l) => (load = l), probe);
    expect(acc.wireRetries, 'RETRYs while the database was gone').to.be.greaterThan(0);
    // Nothing is left behind: every ACKed reply's outbox row is completed and every ACK2ed request's inbox row
    // deleted, also for ACKs that came while the database was gone (polled, bounded; these writes gather 25 ms).
    const count = async (table: string): Promise<number> =>
      Number(((await db!.knex(table).count({ n: '*' }).first()) as { n: number | string }).n);
    const deadline = Date.now() + 15_000;
    let left = { outbox: -1, inbox: -1 };
    while (Date.now() < deadline) {
      left = { outbox: await count('mats_socket_outbox'), inbox: await count('mats_socket_inbox') };
      if (left.outbox === 0 && left.inbox === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(left, 'rows left after every reply was ACKed and every request ACK2ed').to.deep.equal({
      outbox: 0,
      inbox: 0,
    });
  });
});

describe('Faults: RabbitMQ restarts mid-run (connections cut, refused for 3 s) [RabbitMQ + MariaDB]', function () {
  this.timeout(90_000);
  let db: TestDatabase | undefined;
  let proxy: OutageProxy | undefined;
  let cluster: TestCluster | undefined;
  let load: LoadRun | undefined;

  before(async function () {
    await requireClusterServices(this, 'rabbitmq', 'mysql');
    db = await createTestDatabase('mysql');
    const direct = new URL(serviceUrls.rabbitmq);
    proxy = await OutageProxy.start({ host: direct.hostname, port: Number(direct.port || 5672) });
    const viaProxy = new URL(serviceUrls.rabbitmq);
    viaProxy.port = String(proxy.port);
    cluster = await startTestCluster({
      nodes: 2,
      db,
      transport: 'rabbitmq',
      transportOptions: { url: viaProxy.toString() },
      endpoints: registerFaultEndpoints(new BackendRuns()),
      factory: { maxDeliveryAttempts: 6, retryDelayMs: 250 },
    });
  });

  after(async () => {
    await load?.close();
    await cluster?.stop();
    await proxy?.close();
    await db?.drop();
  });

  it('both nodes reconnect and re-declare; every request answered exactly once', async () => {
    await loadThroughOutage(cluster!, proxy!, 'RabbitMQ', (l) => (load = l));
  });
});
