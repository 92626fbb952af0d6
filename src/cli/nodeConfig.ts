import { hostname } from 'node:os';
import { ConfigError } from '../errors.ts';
import { parseDatabaseUrl, type DatabaseUrl } from '../store/database.ts';
import { hostNameOf, isValidBearerToken, MIN_BEARER_TOKEN_LENGTH } from '../ops/bearerCheck.ts';

/** The environment as the CLI reads it (`process.env`, or a plain object in tests). */
export type Environment = Readonly<Record<string, string | undefined>>;

/** pino's levels, plus `silent`. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The embedded default database of `npm start` (a file, so sessions survive a restart). */
export const DEFAULT_NODE_DB_URL = 'sqlite:data/matssocket.sqlite';
/** The compatibility server's default: empty at every start (docs/compat-test-server.md 1.1). */
export const DEFAULT_COMPAT_DB_URL = 'sqlite::memory:';

/** What both programs read: where the broker and the database are, how much backend concurrency, how to log. */
export interface InfrastructureConfig {
  /** `MATSSOCKET_AMQP_URL`: RabbitMQ; `undefined` selects the embedded in-memory broker. */
  amqpUrl: string | undefined;
  /** `MATSSOCKET_DB_URL`, parsed. */
  db: DatabaseUrl;
  /** The URL as given (for logs: redact it first). */
  dbUrl: string;
  /** `MATSSOCKET_CONCURRENCY`: every backend stage's concurrency; `undefined` keeps the Mats layer's default. */
  concurrency: number | undefined;
  /**
   * `MATSSOCKET_QUEUE_PREFIX` (our extension): prefix of every queue, and of the pub/sub exchange
   * (`<prefix>pubsub`), so several deployments or test runs can share one RabbitMQ. @default 'mats.'
   */
  queuePrefix: string;
  /** `LOG_LEVEL`. @default 'info' */
  logLevel: LogLevel;
}

/** `npm run compat-server` (docs/compat-test-server.md 1.1). */
export interface CompatServerConfig extends InfrastructureConfig {
  /** `MATSSOCKET_HOST`: bind address of every node. @default '127.0.0.1' */
  host: string;
  /** `MATSSOCKET_PORTS`: one node per port, in order. @default [8080, 8081, 8082] */
  ports: number[];
}

/** `npm start`: one node with the demo and admin pages. */
export interface MainNodeConfig extends InfrastructureConfig {
  /** `HOST`: bind address. @default '127.0.0.1' (set `0.0.0.0` to serve other machines) */
  host: string;
  /** `PORT`: listen port; 0 picks a free one (logged). @default 8080 */
  port: number;
  /**
   * `MATSSOCKET_NODE_NAME`: unique among running nodes, stable across restarts of this node (its stale sessions
   * are deregistered at start-up). @default `<hostname>-<port>` (`<hostname>-pid<pid>` with PORT=0)
   */
  nodeName: string;
  /**
   * `DEMO_TICKER_INTERVAL_MS`: how often the demo publishes to the `Demo.ticker` topic, in ms; 0 disables it.
   * @default 5000
   */
  tickerIntervalMs: number;
  /**
   * `MATSSOCKET_ADMIN_TOKEN`: the bearer token of the admin API (at least 16 visible ASCII characters).
   * @default undefined: a random token is generated at each start and printed in the admin page's URL
   */
  adminToken: string | undefined;
  /**
   * `MATSSOCKET_ADMIN_HOSTS`: comma-separated host names (no port) the admin API accepts in the `Host` header
   * besides localhost, 127.0.0.1, [::1] and `HOST`; needed to administer a node bound to 0.0.0.0 from elsewhere.
   * @default []
   */
  adminAllowedHosts: string[];
}

function text(env: Environment, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value.length === 0 ? undefined : value;
}

function parsePort(value: string, name: string): number {
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) {
    throw new ConfigError(name, `must be a port number 0-65535, got '${value}'`);
  }
  return Number(value);
}

function parseNonNegativeInt(value: string, name: string, min: number): number {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value)) || Number(value) < min) {
    throw new ConfigError(name, `must be an integer >= ${min}, got '${value}'`);
  }
  return Number(value);
}

function readInfrastructure(env: Environment, defaultDbUrl: string): InfrastructureConfig {
  const amqpUrl = text(env, 'MATSSOCKET_AMQP_URL');
  if (amqpUrl !== undefined && !/^amqps?:\/\//i.test(amqpUrl)) {
    throw new ConfigError('MATSSOCKET_AMQP_URL', 'must start with amqp:// or amqps://');
  }
  const dbUrl = text(env, 'MATSSOCKET_DB_URL') ?? defaultDbUrl;
  const db = parseDatabaseUrl(dbUrl, 'MATSSOCKET_DB_URL');
  const concurrencyText = text(env, 'MATSSOCKET_CONCURRENCY');
  const concurrency =
    concurrencyText === undefined
      ? undefined
      : parseNonNegativeInt(concurrencyText, 'MATSSOCKET_CONCURRENCY', 1);
  const queuePrefix = text(env, 'MATSSOCKET_QUEUE_PREFIX') ?? 'mats.';
  if (!/^[A-Za-z0-9._-]{1,100}$/.test(queuePrefix)) {
    throw new ConfigError('MATSSOCKET_QUEUE_PREFIX', 'must match [A-Za-z0-9._-]{1,100}');
  }
  const level = (text(env, 'LOG_LEVEL') ?? 'info').toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new ConfigError('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}, got '${level}'`);
  }
  return { amqpUrl, db, dbUrl, concurrency, queuePrefix, logLevel: level as LogLevel };
}

/**
 * Reads the compatibility server's environment (docs/compat-test-server.md 1.1).
 * @throws ConfigError naming the offending environment variable.
 */
export function readCompatServerConfig(env: Environment): CompatServerConfig {
  const infra = readInfrastructure(env, DEFAULT_COMPAT_DB_URL);
  const host = text(env, 'MATSSOCKET_HOST') ?? '127.0.0.1';
  const portsText = text(env, 'MATSSOCKET_PORTS') ?? '8080,8081,8082';
  const ports = portsText.split(',').map((p) => parsePort(p.trim(), 'MATSSOCKET_PORTS'));
  if (ports.some((p) => p === 0)) {
    // The node names are derived from the ports, and harnesses build the URLs from them.
    throw new ConfigError('MATSSOCKET_PORTS', 'port 0 is not allowed: the ports are fixed');
  }
  if (new Set(ports).size !== ports.length) {
    throw new ConfigError('MATSSOCKET_PORTS', `has duplicates: '${portsText}'`);
  }
  return { ...infra, host, ports };
}

/**
 * Reads the `npm start` node's environment.
 * @throws ConfigError naming the offending environment variable.
 */
export function readMainNodeConfig(env: Environment, pid: number = process.pid): MainNodeConfig {
  const infra = readInfrastructure(env, DEFAULT_NODE_DB_URL);
  const host = text(env, 'HOST') ?? '127.0.0.1';
  const portText = text(env, 'PORT');
  const port = portText === undefined ? 8080 : parsePort(portText, 'PORT');
  const host0 = hostname().replace(/[^A-Za-z0-9._-]/g, '_') || 'node';
  const nodeName = text(env, 'MATSSOCKET_NODE_NAME') ?? `${host0}-${port === 0 ? `pid${pid}` : port}`;
  if (!/^[A-Za-z0-9._-]{1,200}$/.test(nodeName)) {
    throw new ConfigError('MATSSOCKET_NODE_NAME', 'must match [A-Za-z0-9._-]{1,200}');
  }
  const tickerText = text(env, 'DEMO_TICKER_INTERVAL_MS');
  const tickerIntervalMs =
    tickerText === undefined ? 5000 : parseNonNegativeInt(tickerText, 'DEMO_TICKER_INTERVAL_MS', 0);
  const adminToken = text(env, 'MATSSOCKET_ADMIN_TOKEN');
  if (adminToken !== undefined && !isValidBearerToken(adminToken)) {
    throw new ConfigError(
      'MATSSOCKET_ADMIN_TOKEN',
      `must be at least ${MIN_BEARER_TOKEN_LENGTH} visible ASCII characters without spaces`,
    );
  }
  const adminAllowedHosts = (text(env, 'MATSSOCKET_ADMIN_HOSTS') ?? '')
    .split(',')
    .map((h) => h.trim())
    .filter((h) => h.length > 0)
    .map((h) => {
      const name = hostNameOf(h);
      if (name === undefined || name !== h.toLowerCase()) {
        throw new ConfigError('MATSSOCKET_ADMIN_HOSTS', `must list host names without ports, got '${h}'`);
      }
      return name;
    });
  return { ...infra, host, port, nodeName, tickerIntervalMs, adminToken, adminAllowedHosts };
}
