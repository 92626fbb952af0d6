/**
 * A test-only program running the chaos soak's backend: a Mats factory with the Mats endpoints the nodes forward
 * to, and no MatsSocket server, so it can be killed apart from them. Inbox and outbox are on, so a redelivery after
 * a `kill -9` is de-duplicated and its reply published once. Configured by `CHAOS_CONFIG`; prints `READY backend`.
 */
import { AmqpTransport } from '../../src/broker/AmqpTransport.ts';
import { MatsFactory } from '../../src/mats/MatsFactory.ts';
import { createDatabase } from '../../src/store/database.ts';
import { registerBackendEndpoints, stderrLogger, type ChaosProgramConfig } from './chaosEndpoints.ts';

const logger = stderrLogger();
const config = JSON.parse(process.env.CHAOS_CONFIG ?? '') as ChaosProgramConfig;
const knex = createDatabase(config.dbUrl, { poolMax: 6, connectTimeoutMs: 2000 });
const transport = new AmqpTransport({
  url: config.amqpUrl,
  name: `${config.queuePrefix}${config.nodeName}`,
  exchange: `${config.queuePrefix}pubsub`,
  confirmTimeoutMs: 2000,
  reconnect: { initialMs: 50, factor: 2, maxMs: 500, jitter: 0.2 },
  closeTimeoutMs: 1000,
});
const factory = new MatsFactory({
  appName: 'MatsSocketChaosBackend',
  appVersion: '1.0.0',
  nodeName: config.nodeName,
  transport,
  db: knex,
  queuePrefix: config.queuePrefix,
  logger,
  inbox: true,
  outbox: true,
  retryDelayMs: 50,
  outboxSweepIntervalMs: 200,
  outboxSweepMinAgeMs: 500,
});
await factory.migrate();
registerBackendEndpoints(factory);
await factory.start();
if (!(await factory.waitForReceiving(20_000))) throw new Error('backend endpoints do not consume');
process.stdout.write(`READY ${config.nodeName}\n`);

process.once('SIGTERM', () => {
  void (async () => {
    await factory.stop(500);
    await transport.close();
    await knex.destroy();
    process.exit(0);
  })();
});
