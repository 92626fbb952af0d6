import { silentLogger, type Logger } from '../../../src/logging.ts';
import { startCompatServer } from '../../../src/cli/compat/startCompatServer.ts';
import type { NodeAssembly } from '../../../src/cli/NodeAssembly.ts';
import { readCompatServerConfig } from '../../../src/cli/nodeConfig.ts';
import { freePorts } from '../../helpers/clientKit.ts';
import { createTestDatabase, type TestDatabase } from '../../../harness/databases.ts';
import { requireService, serviceUrls } from '../../../harness/services.ts';
import { createTestBroker, testTransportKinds, type TestBroker } from '../../../harness/transports.ts';

/** The configurations the compatibility server suites run in (docs/compat-test-server.md 8). */
export const COMPAT_ENVS = [
  { label: 'in-memory + SQLite :memory:', rabbit: false, mariadb: false },
  { label: 'RabbitMQ + MariaDB', rabbit: true, mariadb: true },
] as const;

export type CompatEnv = (typeof COMPAT_ENVS)[number];

/** The envs to run: RabbitMQ ones only when `TEST_TRANSPORTS` (if set) includes `rabbitmq`. */
export function compatEnvs(): CompatEnv[] {
  const kinds = testTransportKinds();
  return COMPAT_ENVS.filter((e) => !e.rabbit || kinds.includes('rabbitmq'));
}

/** A compatibility server started in this process, plus what it needs cleaned up. */
export interface TestCompatServer {
  readonly assembly: NodeAssembly;
  readonly urls: string[];
  readonly httpUrls: string[];
  /** How many times `GET /shutdown` was called. */
  readonly shutdownRequests: number;
  stop(): Promise<void>;
}

/** With SERVER_TEST_LOG=1, warnings and errors go to the console (debugging a failing test). */
function testLogger(): Logger {
  if (process.env.SERVER_TEST_LOG !== '1') return silentLogger;
  const log: Logger = {
    trace() {},
    debug() {},
    info() {},
    warn: (obj, msg) => console.warn(`WARN ${msg ?? ''}`, obj),
    error: (obj, msg) => console.warn(`ERROR ${msg ?? ''}`, obj),
    child: () => log,
  };
  return log;
}

/**
 * Starts the compatibility server exactly as `npm run compat-server` does (same config parsing, same assembly), on
 * free ports; for RabbitMQ with a per-suite queue prefix (queues deleted afterwards) and for MariaDB in a per-suite
 * database. Call `requireCompatServices` first.
 */
export async function startTestCompatServer(env: CompatEnv, nodes = 3): Promise<TestCompatServer> {
  const ports = await freePorts(nodes);
  let db: TestDatabase | undefined;
  let broker: TestBroker | undefined;
  try {
    if (env.mariadb) db = await createTestDatabase('mysql');
    if (env.rabbit) broker = await createTestBroker('rabbitmq');
    const config = readCompatServerConfig({
      MATSSOCKET_PORTS: ports.join(','),
      ...(db ? { MATSSOCKET_DB_URL: db.url } : {}),
      ...(broker ? { MATSSOCKET_AMQP_URL: serviceUrls.rabbitmq } : {}),
      ...(broker ? { MATSSOCKET_QUEUE_PREFIX: broker.prefix } : {}),
    });
    let shutdownRequests = 0;
    const assembly = await startCompatServer(config, {
      logger: testLogger(),
      onShutdown: () => shutdownRequests++,
      stopGraceMs: 500,
    });
    let stopped: Promise<void> | undefined;
    return {
      assembly,
      urls: assembly.nodes.map((n) => n.webSocketUrl),
      httpUrls: assembly.nodes.map((n) => n.webSocketUrl.replace(/^ws/, 'http')),
      get shutdownRequests() {
        return shutdownRequests;
      },
      stop() {
        stopped ??= (async () => {
          await assembly.stop();
          await broker?.close();
          await db?.drop();
        })();
        return stopped;
      },
    };
  } catch (err) {
    await broker?.close();
    await db?.drop();
    throw err;
  }
}

/** Skips (or, in CI, fails) when the env's services are unreachable. */
export async function requireCompatServices(ctx: Mocha.Context, env: CompatEnv): Promise<void> {
  if (env.rabbit) await requireService(ctx, 'rabbitmq');
  if (env.mariadb) await requireService(ctx, 'mariadb');
}
