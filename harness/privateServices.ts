import { mariaDbPrograms, PrivateMariaDb } from './PrivateMariaDb.ts';
import { PrivateRabbitMq, rabbitMqPrograms } from './PrivateRabbitMq.ts';
import type { PrivateServiceTimings } from './PrivateServiceProcess.ts';

export { PrivateMariaDb } from './PrivateMariaDb.ts';
export { PrivateRabbitMq } from './PrivateRabbitMq.ts';
export type { RestartMode } from './PrivateServiceProcess.ts';

/** The servers a test may run privately: what it may restart, kill or reconfigure (never the shared ones). */
export type PrivateServiceName = 'rabbitmq' | 'mariadb';

const packages: Record<PrivateServiceName, string> = {
  rabbitmq: 'rabbitmq-server',
  mariadb: 'mariadb-server',
};

/** Whether this machine has the programs to run a private `name`. */
export function canRunPrivate(name: PrivateServiceName): boolean {
  return (name === 'rabbitmq' ? rabbitMqPrograms() : mariaDbPrograms()) !== undefined;
}

/**
 * Call in a `before` hook of a suite that runs private servers. Where the programs are missing, CI (`CI=true`)
 * **fails** the suite; elsewhere it is skipped with one loud line. (Programs present but a server that does not
 * boot is always a failure: {@link startPrivateRabbitMq} and {@link startPrivateMariaDb} throw, naming why.)
 */
export function requirePrivateService(ctx: Mocha.Context, name: PrivateServiceName): void {
  if (canRunPrivate(name)) return;
  const message = `cannot run a private ${name}: its programs are missing (install ${packages[name]})`;
  if (process.env.CI === 'true') throw new Error(`${message} (required in CI)`);
  console.warn(`  SKIPPING: ${message}`);
  ctx.skip();
}

/** Starts a private RabbitMQ node; resolves when it serves AMQP. Close it in an `after` hook. */
export function startPrivateRabbitMq(timings?: PrivateServiceTimings): Promise<PrivateRabbitMq> {
  return PrivateRabbitMq.start(timings);
}

/** Starts a private MariaDB server; resolves when it answers queries. Close it in an `after` hook. */
export function startPrivateMariaDb(timings?: PrivateServiceTimings): Promise<PrivateMariaDb> {
  return PrivateMariaDb.start(timings);
}
