/**
 * A test-only program running ONE MatsSocket node of the chaos soak (RabbitMQ + MariaDB, both through the soak's
 * outage proxies) with the MatsSocket endpoints only: the Mats endpoints they forward to run in the backend
 * process. Configured by the JSON in `CHAOS_CONFIG` ({@link ChaosProgramConfig}); prints `READY <ws url>` when
 * listening; meant to die by `kill -9` (SIGTERM stops it gracefully).
 */
import { AmqpTransport } from '../../src/broker/AmqpTransport.ts';
import { MatsFactory } from '../../src/mats/MatsFactory.ts';
import { MatsSocketServer } from '../../src/server/MatsSocketServer.ts';
import { createDatabase } from '../../src/store/database.ts';
import { SqlClusterStore } from '../../src/store/SqlClusterStore.ts';
import { testAuthPlugin } from '../../harness/startTestCluster.ts';
import { registerNodeEndpoints, stderrLogger, type ChaosProgramConfig } from './chaosEndpoints.ts';

const logger = stderrLogger();
const config = JSON.parse(process.env.CHAOS_CONFIG ?? '') as ChaosProgramConfig;
const knex = createDatabase(config.dbUrl, { poolMax: 6, connectTimeoutMs: 2000 });
// The topic guarantee holds while the log retains what an outage held back (docs/protocol.md BR-1); the default
// 1000 per topic is less than a soak publishes, so the soak keeps them all and its accounting stays exact.
const store = new SqlClusterStore(knex, {
  nodeName: config.nodeName,
  migrate: true,
  topicReplayMaxPerTopic: 1_000_000,
});
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
  appName: 'MatsSocketChaos',
  appVersion: '1.0.0',
  nodeName: config.nodeName,
  transport,
  db: knex,
  queuePrefix: config.queuePrefix,
  logger,
  retryDelayMs: 50,
  outboxSweepIntervalMs: 200,
  outboxSweepMinAgeMs: 500,
});
const server = new MatsSocketServer({
  nodeName: config.nodeName,
  instanceName: config.instanceName,
  matsFactory: factory,
  store,
  authenticationPlugin: () => testAuthPlugin(),
  logger,
  timings: { stopGraceMs: 500 },
  jobs: { selfHealIntervalMs: 300, selfHealMinAgeMs: 1000, selfHealStaleRegistrationMs: 2000 },
});
registerNodeEndpoints(server, config.topicId ?? 'Chaos.topic');
const { url } = await server.listen({ port: config.port ?? 0 });
process.stdout.write(`READY ${url}\n`);

process.once('SIGTERM', () => {
  void (async () => {
    await server.stop(300);
    await factory.stop(500);
    await store.close();
    await transport.close();
    await knex.destroy();
    process.exit(0);
  })();
});
