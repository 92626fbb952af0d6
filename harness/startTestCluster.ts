import type { Knex } from 'knex';
import type { Logger } from '../src/logging.ts';
import { MatsFactory } from '../src/mats/MatsFactory.ts';
import type { MatsFactoryOptions } from '../src/mats/MatsFactoryOptions.ts';
import { ALL_DEBUG_OPTIONS } from '../src/protocol/debugOptions.ts';
import {
  authenticated,
  invalidAuthentication,
  stillValid,
  type AuthenticationPlugin,
  type AuthenticationPluginFactory,
  type AuthenticationResult,
} from '../src/server/auth/AuthenticationPlugin.ts';
import { MatsSocketServer } from '../src/server/MatsSocketServer.ts';
import type { MatsSocketServerOptions } from '../src/server/MatsSocketServerOptions.ts';
import { SqlClusterStore } from '../src/store/SqlClusterStore.ts';
import type { StoreOptions } from '../src/store/StoreOptions.ts';
import { runId } from './runState.ts';
import type { TestDatabase } from './databases.ts';
import { requireService } from './services.ts';
import {
  createTestBroker,
  type TestBroker,
  type TestTransportOptions,
  type TransportKind,
} from './transports.ts';

/**
 * A DummyAuth-like test plugin (docs/compat-test-server.md 3): `TestAuth:<userId>:<expiresMillis|-1>`. Markers in the
 * value: `:fail_initial:` (initial authentication invalid), `:fail_reevaluate:` (reevaluation invalid → REAUTH),
 * `:fail_outgoing:` (outgoing reevaluation invalid → REAUTH, outbox held); userId `enableAllDebugOptions` gets
 * every debug option; topics starting with `Test.noAuth.` are refused.
 */
export function testAuthPlugin(): AuthenticationPlugin {
  let current: string | undefined;
  let expiry = -1;
  const initial = (value: string): AuthenticationResult => {
    const parts = value.split(':');
    if (parts.length !== 3 || parts[0] !== 'TestAuth')
      return invalidAuthentication('Not TestAuth:<userId>:<expiry>');
    const userId = parts[1]!;
    if (userId === 'fail_initial') return invalidAuthentication('Asked to fail in initialAuthentication');
    const exp = Number(parts[2]);
    if (!Number.isInteger(exp)) return invalidAuthentication('Expiry is not an integer');
    if (exp !== -1 && exp < Date.now()) return invalidAuthentication('Too old (initialAuthentication)');
    current = value;
    expiry = exp;
    return authenticated(
      { name: `userId:${userId}`, userId },
      userId,
      userId === 'enableAllDebugOptions' ? ALL_DEBUG_OPTIONS : 0,
    );
  };
  const reevaluate = (value: string): AuthenticationResult => {
    if (value.includes(':fail_reevaluate:'))
      return invalidAuthentication('Asked to fail in reevaluateAuthentication');
    if (value === current) {
      return expiry !== -1 && expiry <= Date.now()
        ? invalidAuthentication('Too old (reevaluate)')
        : stillValid();
    }
    return initial(value);
  };
  return {
    initialAuthentication: (_ctx, value) => initial(value),
    reevaluateAuthentication: (_ctx, value) => reevaluate(value),
    reevaluateAuthenticationForOutgoingMessage: (_ctx, value) =>
      value.includes(':fail_outgoing:') ? invalidAuthentication('Asked to fail outgoing') : reevaluate(value),
    authorizeUserForTopic: (_ctx, topic) => !topic.startsWith('Test.noAuth.'),
  };
}

/** `TestAuth:<userId>:-1` (never expires). */
export function testAuth(userId: string, expiresMillis = -1): string {
  return `TestAuth:${userId}:${expiresMillis}`;
}

export interface TestNode {
  readonly nodeName: string;
  readonly url: string;
  readonly server: MatsSocketServer;
  readonly factory: MatsFactory;
  readonly store: SqlClusterStore;
}

export interface TestCluster {
  readonly nodes: TestNode[];
  readonly broker: TestBroker;
  readonly db: TestDatabase;
  /** Stops every node (servers, factories, stores), then the broker. The database stays (owned by the caller). */
  stop(): Promise<void>;
}

export interface StartTestClusterOptions {
  /** @default 1 */
  nodes?: number;
  /** @default 'inmemory' */
  transport?: TransportKind;
  db: TestDatabase;
  /** @default testAuthPlugin */
  auth?: AuthenticationPluginFactory;
  /** Called per node before it starts: register MatsSocket endpoints and backend (Mats) endpoints. */
  endpoints?: (server: MatsSocketServer, factory: MatsFactory, nodeIndex: number) => void;
  /** Server options per node (merged over fast test defaults). */
  server?: Partial<
    Omit<MatsSocketServerOptions, 'nodeName' | 'matsFactory' | 'store' | 'authenticationPlugin'>
  >;
  /** Mats factory options (merged over test defaults). */
  factory?: Partial<MatsFactoryOptions>;
  /** Store options. */
  store?: Partial<StoreOptions>;
  /** A logger for every node. */
  logger?: Logger;
  /** Options of every node's transport (RabbitMQ: e.g. `url` of a proxy in front of the broker). */
  transportOptions?: TestTransportOptions;
  /** Instance name shared by the nodes. @default a unique one per cluster */
  instanceName?: string;
}

let clusterCounter = 0;

/** With SERVER_TEST_LOG=1: warnings and errors of every node to the console (debugging a failing test). */
function envLogger(): Logger | undefined {
  if (process.env.SERVER_TEST_LOG !== '1') return undefined;
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
 * Starts `nodes` MatsSocket server nodes in this process on one broker (in-memory or RabbitMQ with a per-suite
 * prefix) and one database: SQLite nodes share its single knex instance (one connection); MariaDB/PostgreSQL
 * nodes get their own pools. Each node listens on 127.0.0.1 with a free port.
 */
export async function startTestCluster(options: StartTestClusterOptions): Promise<TestCluster> {
  const kind = options.transport ?? 'inmemory';
  const db = options.db;
  const broker = await createTestBroker(kind);
  const cluster = ++clusterCounter;
  const instanceName = options.instanceName ?? `T${runId}c${cluster}`;
  const nodes: TestNode[] = [];
  const logger = options.logger ?? envLogger();
  const knexes: Knex[] = [];
  const stopNodes = async (): Promise<void> => {
    for (const node of nodes) await node.server.stop(200);
    await Promise.allSettled(nodes.map((n) => n.factory.stop(500)));
    await Promise.allSettled(nodes.map((n) => n.store.close()));
    await broker.close();
  };
  try {
    for (let i = 0; i < (options.nodes ?? 1); i++) {
      const nodeName = `n${i + 1}_${runId}_${cluster}`;
      const knex = db.dialect === 'sqlite' ? db.knex : db.connect();
      knexes.push(knex);
      const store = new SqlClusterStore(knex, { nodeName, migrate: true, ...options.store });
      await store.boot();
      const transport = broker.createTransport(nodeName, options.transportOptions);
      const factory = new MatsFactory({
        appName: 'MatsSocketTest',
        appVersion: '1.0.0',
        nodeName,
        transport,
        db: knex,
        queuePrefix: broker.prefix,
        maxDeliveryAttempts: 3,
        retryDelayMs: 20,
        outboxSweepIntervalMs: 100,
        outboxSweepMinAgeMs: 300,
        ...(logger ? { logger } : {}),
        ...options.factory,
      });
      const server = new MatsSocketServer({
        nodeName,
        instanceName,
        matsFactory: factory,
        store,
        authenticationPlugin: options.auth ?? (() => testAuthPlugin()),
        ...(logger ? { logger } : {}),
        ...options.server,
        timings: { stopGraceMs: 500, ...options.server?.timings },
        jobs: { enabled: true, ...options.server?.jobs },
      });
      options.endpoints?.(server, factory, i);
      const { url } = await server.listen();
      nodes.push({ nodeName, url, server, factory, store });
    }
  } catch (err) {
    await stopNodes().catch(() => undefined);
    throw err;
  }
  let stopped: Promise<void> | undefined;
  return {
    nodes,
    broker,
    db,
    stop() {
      stopped ??= stopNodes();
      return stopped;
    },
  };
}

/** Requires the services a transport/dialect combination needs (call in `before`). */
export async function requireClusterServices(
  ctx: Mocha.Context,
  transport: TransportKind,
  dialect: TestDatabase['dialect'],
): Promise<void> {
  if (transport === 'rabbitmq') await requireService(ctx, 'rabbitmq');
  if (dialect === 'mysql') await requireService(ctx, 'mariadb');
  if (dialect === 'postgres') await requireService(ctx, 'postgres');
}
