/**
 * A test-only program running ONE MatsSocket node (RabbitMQ + a SQL database) with the fault endpoints, so a test
 * can `kill -9` a real process. Configured by the JSON in `FAULT_NODE_CONFIG` ({@link FaultNodeConfig}); prints
 * `READY <ws url>` when listening; SIGTERM stops it gracefully.
 */
import { AmqpTransport } from '../src/broker/AmqpTransport.ts';
import { MatsFactory } from '../src/mats/MatsFactory.ts';
import { MatsSocketServer } from '../src/server/MatsSocketServer.ts';
import { createDatabase } from '../src/store/database.ts';
import { SqlClusterStore } from '../src/store/SqlClusterStore.ts';
import { testAuthPlugin } from './startTestCluster.ts';
import { BackendRuns, registerFaultEndpoints } from './faultEndpoints.ts';

/** What the parent passes in `FAULT_NODE_CONFIG`. */
export interface FaultNodeConfig {
  nodeName: string;
  instanceName: string;
  amqpUrl: string;
  dbUrl: string;
  queuePrefix: string;
  /**
   * `fast` (default): the short retry, sweep and self-heal intervals the fault tests wait on; `production`: the
   * library's defaults for those, as the throughput bench wants (no extra background load).
   */
  timings?: 'fast' | 'production';
}

const config = JSON.parse(process.env.FAULT_NODE_CONFIG ?? '') as FaultNodeConfig;
const fast = config.timings !== 'production';
const knex = createDatabase(config.dbUrl, { poolMax: 8 });
const store = new SqlClusterStore(knex, { nodeName: config.nodeName, migrate: true });
await store.boot();
const transport = new AmqpTransport({
  url: config.amqpUrl,
  name: `${config.queuePrefix}${config.nodeName}`,
  exchange: `${config.queuePrefix}pubsub`,
  confirmTimeoutMs: 2000,
  reconnect: { initialMs: 50, factor: 2, maxMs: 500, jitter: 0.2 },
  closeTimeoutMs: 1000,
});
const factory = new MatsFactory({
  appName: 'MatsSocketFaults',
  appVersion: '1.0.0',
  nodeName: config.nodeName,
  transport,
  db: knex,
  queuePrefix: config.queuePrefix,
  ...(fast ? { retryDelayMs: 20, outboxSweepIntervalMs: 100, outboxSweepMinAgeMs: 300 } : {}),
});
const server = new MatsSocketServer({
  nodeName: config.nodeName,
  instanceName: config.instanceName,
  matsFactory: factory,
  store,
  authenticationPlugin: () => testAuthPlugin(),
  timings: { stopGraceMs: 500 },
  ...(fast
    ? { jobs: { selfHealIntervalMs: 300, selfHealMinAgeMs: 1000, selfHealStaleRegistrationMs: 2000 } }
    : {}),
});
registerFaultEndpoints(new BackendRuns())(server, factory);
const { url } = await server.listen();
process.stdout.write(`READY ${url}\n`);

let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  void (async () => {
    await server.stop(300);
    await factory.stop(500);
    await store.close();
    await transport.close();
    await knex.destroy();
    process.exit(0);
  })();
});
