import net from 'node:net';

/** Connection URLs of the real services tests run against (the defaults match this machine kind and CI). */
export const serviceUrls = {
  mariadb: process.env.MARIADB_URL ?? 'mysql://root@127.0.0.1:3306',
  postgres: process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
  rabbitmq: process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672',
} as const;

export type ServiceName = keyof typeof serviceUrls;

const reachable = new Map<ServiceName, Promise<boolean>>();

function tcpProbe(url: string, defaultPort: number): Promise<boolean> {
  const u = new URL(url);
  const port = Number(u.port || defaultPort);
  return new Promise((resolve) => {
    const socket = net.connect({ host: u.hostname, port, timeout: 2000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

const defaultPorts: Record<ServiceName, number> = { mariadb: 3306, postgres: 5432, rabbitmq: 5672 };

/**
 * Call in a `before` hook of a suite that needs a real service. In CI (`CI=true`) an unreachable service
 * **fails** the suite; elsewhere the suite is skipped with one loud line, so `npm test` works on a laptop
 * without the services.
 */
export async function requireService(ctx: Mocha.Context, name: ServiceName): Promise<void> {
  let probe = reachable.get(name);
  if (!probe) {
    probe = tcpProbe(serviceUrls[name], defaultPorts[name]);
    reachable.set(name, probe);
  }
  if (await probe) return;
  const message = `${name} is not reachable at ${serviceUrls[name]}`;
  if (process.env.CI === 'true') throw new Error(`${message} (required in CI)`);
  console.warn(`  SKIPPING: ${message}; start it (see README, docker-compose.yml) to run these tests`);
  ctx.skip();
}
