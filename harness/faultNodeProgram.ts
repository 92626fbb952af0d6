/**
 * A test-only program running ONE MatsSocket node with the fault endpoints, so a test can `kill -9` a real process
 * and a benchmark can run its nodes as deployed (one event loop each). On RabbitMQ + a SQL database when
 * `amqpUrl` is given; otherwise the embedded default of `npm start` (in-process broker, usually a SQLite file),
 * assembled by the CLI's own {@link NodeAssembly}. Configured by the JSON in `FAULT_NODE_CONFIG`
 * ({@link FaultNodeConfig}); prints `READY <ws url>` when listening; answers IPC requests for its counters
 * (`nodeCounters.ts`); SIGTERM stops it gracefully.
 */
import { AmqpTransport } from '../src/broker/AmqpTransport.ts';
import { NodeAssembly } from '../src/cli/NodeAssembly.ts';
import { silentLogger } from '../src/logging.ts';
import { MatsFactory } from '../src/mats/MatsFactory.ts';
import { MatsSocketServer } from '../src/server/MatsSocketServer.ts';
import { createDatabase, parseDatabaseUrl } from '../src/store/database.ts';
import { SqlClusterStore } from '../src/store/SqlClusterStore.ts';
import { testAuthPlugin } from './startTestCluster.ts';
import { BackendRuns, registerFaultEndpoints } from './faultEndpoints.ts';
import { answerCounterRequests, countNodeWork, type NodeCounters } from './nodeCounters.ts';

/** What the parent passes in `FAULT_NODE_CONFIG`. */
export interface FaultNodeConfig {
  nodeName: string;
  instanceName: string;
  /** RabbitMQ; absent: the embedded in-process broker (only this node can use it). */
  amqpUrl?: string;
  dbUrl: string;
  queuePrefix: string;
  /**
   * `fast` (default): the short retry, sweep and self-heal intervals the fault tests wait on; `production`: the
   * library's defaults for those, as the throughput bench wants (no extra background load). The embedded node
   * takes only the server's fast job intervals: the CLI's assembly gives its Mats factory the library's timings.
   */
  timings?: 'fast' | 'production';
  /** The AMQP transport's amqplib fast path (`directPublish`, `coalesceWrites`); the bench compares both. @default true */
  amqpFastPath?: boolean;
  /** Concurrency (= prefetch) of the node's Mats stages, `Fault.echo` among them. @default the Mats layer's */
  concurrency?: number;
}

interface RunningNode {
  url: string;
  counters: NodeCounters;
  stop(): Promise<void>;
}

const config = JSON.parse(process.env.FAULT_NODE_CONFIG ?? '') as FaultNodeConfig;
const fast = config.timings !== 'production';
const fastJobs = { selfHealIntervalMs: 300, selfHealMinAgeMs: 1000, selfHealStaleRegistrationMs: 2000 };

async function startRabbitNode(amqpUrl: string): Promise<RunningNode> {
  const knex = createDatabase(config.dbUrl, { poolMax: 8 });
  const store = new SqlClusterStore(knex, { nodeName: config.nodeName, migrate: true });
  await store.boot();
  const transport = new AmqpTransport({
    url: amqpUrl,
    name: `${config.queuePrefix}${config.nodeName}`,
    exchange: `${config.queuePrefix}pubsub`,
    confirmTimeoutMs: 2000,
    reconnect: { initialMs: 50, factor: 2, maxMs: 500, jitter: 0.2 },
    closeTimeoutMs: 1000,
    directPublish: config.amqpFastPath ?? true,
    coalesceWrites: config.amqpFastPath ?? true,
  });
  const counters = countNodeWork(knex, transport);
  const factory = new MatsFactory({
    appName: 'MatsSocketFaults',
    appVersion: '1.0.0',
    nodeName: config.nodeName,
    transport,
    db: knex,
    queuePrefix: config.queuePrefix,
    ...(config.concurrency !== undefined ? { concurrency: config.concurrency } : {}),
    ...(fast ? { retryDelayMs: 20, outboxSweepIntervalMs: 100, outboxSweepMinAgeMs: 300 } : {}),
  });
  const server = new MatsSocketServer({
    nodeName: config.nodeName,
    instanceName: config.instanceName,
    matsFactory: factory,
    store,
    authenticationPlugin: () => testAuthPlugin(),
    timings: { stopGraceMs: 500 },
    ...(fast ? { jobs: fastJobs } : {}),
  });
  registerFaultEndpoints(new BackendRuns())(server, factory);
  const { url } = await server.listen();
  return {
    url,
    counters,
    async stop() {
      await server.stop(300);
      await factory.stop(500);
      await store.close();
      await transport.close();
      await knex.destroy();
    },
  };
}

async function startEmbeddedNode(): Promise<RunningNode> {
  let counters: NodeCounters | undefined;
  const assembly = await NodeAssembly.start({
    appName: 'MatsSocketFaults',
    instanceName: config.instanceName,
    host: '127.0.0.1',
    nodes: [{ nodeName: config.nodeName, port: 0 }],
    amqpUrl: undefined,
    db: parseDatabaseUrl(config.dbUrl),
    queuePrefix: config.queuePrefix,
    authenticationPlugin: () => testAuthPlugin(),
    logger: silentLogger,
    stopGraceMs: 500,
    ...(config.concurrency !== undefined ? { concurrency: config.concurrency } : {}),
    ...(fast ? { server: { jobs: fastJobs } } : {}),
    setup(node) {
      counters = countNodeWork(node.knex, node.transport);
      registerFaultEndpoints(new BackendRuns())(node.server, node.factory);
    },
  });
  return { url: assembly.nodes[0]!.webSocketUrl, counters: counters!, stop: () => assembly.stop(300) };
}

const node = config.amqpUrl === undefined ? await startEmbeddedNode() : await startRabbitNode(config.amqpUrl);
answerCounterRequests(node.counters);
process.stdout.write(`READY ${node.url}\n`);

let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  void node.stop().then(() => process.exit(0));
});
