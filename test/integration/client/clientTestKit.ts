import { registerCompatBackendEndpoints } from '../../../src/cli/compat/compatBackendEndpoints.ts';
import { registerCompatMatsSocketEndpoints } from '../../../src/cli/compat/compatMatsSocketEndpoints.ts';
import { DummyAuth } from '../../../src/cli/compat/DummyAuth.ts';
import type { MatsFactory } from '../../../src/mats/MatsFactory.ts';
import type { MatsSocketServer } from '../../../src/server/MatsSocketServer.ts';
import type { Dialect } from '../../../src/store/database.ts';
import { sleep } from '../../../src/cli/compat/compatDtos.ts';
import { createTestDatabase, type TestDatabase } from '../../../harness/databases.ts';
import {
  requireClusterServices,
  startTestCluster,
  type StartTestClusterOptions,
  type TestCluster,
} from '../../../harness/startTestCluster.ts';
import { testTransportKinds, type TransportKind } from '../../../harness/transports.ts';

/** Where the client suites run: in-memory + SQLite always; RabbitMQ + MariaDB unless TEST_TRANSPORTS excludes it. */
export const CLIENT_ENVS: readonly { transport: TransportKind; dialect: Dialect; label: string }[] = [
  { transport: 'inmemory', dialect: 'sqlite', label: 'in-memory + SQLite' },
  { transport: 'rabbitmq', dialect: 'mysql', label: 'RabbitMQ + MariaDB' },
];

/** Counts how often the backend endpoint `Client.counted` ran, per traceId (exactly-once assertions). */
export class BackendCounter {
  readonly counts = new Map<string, number>();

  count(traceId: string): number {
    return this.counts.get(traceId) ?? 0;
  }
}

/**
 * The endpoints of the client suites: the compatibility server's (docs/compat-test-server.md 5-6) plus `Client.counted`,
 * a MatsSocket endpoint forwarding to a backend endpoint that counts its runs per traceId, waits `sleepTime` ms and
 * replies `{ runs, node }`.
 */
export function clientTestEndpoints(counter: BackendCounter) {
  return (server: MatsSocketServer, factory: MatsFactory): void => {
    registerCompatMatsSocketEndpoints(server);
    registerCompatBackendEndpoints(server, factory);
    factory.single<unknown, { sleepTime?: number }>('Client.counted', async (ctx, msg) => {
      const runs = counter.count(ctx.traceId) + 1;
      counter.counts.set(ctx.traceId, runs);
      await sleep(msg?.sleepTime ?? 0);
      return { runs, node: factory.options.nodeName };
    });
    server.endpoint('Client.counted', {
      incoming: (ctx) => ctx.forwardEssential('Client.counted', ctx.message ?? {}),
    });
  };
}

/**
 * `describe(<title> [<env>])` per client env, each with its own database and a cluster of `nodes` nodes running
 * {@link clientTestEndpoints} with DummyAuth.
 */
export function describeEachClientEnv(
  title: string,
  options: Omit<StartTestClusterOptions, 'db' | 'transport' | 'endpoints' | 'auth'>,
  body: (ctx: () => { cluster: TestCluster; counter: BackendCounter }) => void,
): void {
  const kinds = testTransportKinds();
  for (const env of CLIENT_ENVS.filter((e) => kinds.includes(e.transport))) {
    describe(`${title} [${env.label}]`, function () {
      this.timeout(20_000);
      let db: TestDatabase | undefined;
      let cluster: TestCluster | undefined;
      const counter = new BackendCounter();
      before(async function () {
        this.timeout(60_000);
        await requireClusterServices(this, env.transport, env.dialect);
        db = await createTestDatabase(env.dialect);
        cluster = await startTestCluster({
          ...options,
          db,
          transport: env.transport,
          auth: DummyAuth.factory(),
          endpoints: clientTestEndpoints(counter),
        });
      });
      after(async function () {
        this.timeout(30_000);
        await cluster?.stop();
        await db?.drop();
      });
      body(() => {
        if (!cluster) throw new Error('cluster not started');
        return { cluster, counter };
      });
    });
  }
}
