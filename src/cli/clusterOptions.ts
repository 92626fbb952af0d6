import { parseArgs } from 'node:util';
import { ConfigError } from '../errors.ts';
import { isValidBearerToken, MIN_BEARER_TOKEN_LENGTH } from '../ops/bearerCheck.ts';
import { parseDatabaseUrl, type DatabaseUrl } from '../store/database.ts';
import { LOG_LEVELS, type Environment, type LogLevel } from './nodeConfig.ts';

/** `--nodes` bounds: one is a cluster of one; more than 16 would only exhaust a development machine. */
export const MAX_CLUSTER_NODES = 16;
/** RabbitMQ of this repository's docker-compose.yml, as in README's "Quick start". */
export const DEFAULT_CLUSTER_AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';
/** MariaDB of docker-compose.yml; the database is created if missing. */
export const DEFAULT_CLUSTER_DB_URL = 'mysql://root@127.0.0.1:3306/matssocket_cluster';

/** What `npm run cluster` runs, resolved from its flags and the environment. */
export interface ClusterOptions {
  /** `--nodes`: how many node processes, 1..{@link MAX_CLUSTER_NODES}. @default 3 */
  nodes: number;
  /**
   * `--base-port`: node i (1-based) listens on `basePort + i - 1`; 0 lets every node pick a free port (tests).
   * @default 8080
   */
  basePort: number;
  /** `--amqp-url`, else `MATSSOCKET_AMQP_URL`. @default {@link DEFAULT_CLUSTER_AMQP_URL} */
  amqpUrl: string;
  /** `--database-url`, else `MATSSOCKET_DB_URL` (MySQL/MariaDB or PostgreSQL). @default {@link DEFAULT_CLUSTER_DB_URL} */
  dbUrl: string;
  /** {@link dbUrl}, parsed. */
  db: DatabaseUrl;
  /** `--exit-on-failure`: a node that dies stops the whole cluster (exit 1). @default false (the others keep running) */
  exitOnFailure: boolean;
  /** `--help`: print the usage and exit. */
  help: boolean;
  /** `HOST`: bind address of every node. @default '127.0.0.1' */
  host: string;
  /** `MATSSOCKET_ADMIN_TOKEN`: the admin token of every node. @default undefined: generated once per start */
  adminToken: string | undefined;
  /** `LOG_LEVEL`: what the nodes' lines shown here are filtered to. @default 'info' */
  logLevel: LogLevel;
}

/** The usage text of `--help` and of a wrong flag. */
export const CLUSTER_USAGE = `Usage: npm run cluster -- [options]

Starts a local cluster of demo nodes (the npm start node) as separate processes on RabbitMQ and
MySQL/MariaDB or PostgreSQL, prints their URLs, and stops them all on Ctrl-C.

Options:
  --nodes N             number of nodes, 1-${MAX_CLUSTER_NODES} (default 3), named cluster-1 ... cluster-N
  --base-port P         node i listens on P+i-1 (default 8080); 0: each node picks a free port
  --amqp-url URL        RabbitMQ (default $MATSSOCKET_AMQP_URL, else ${DEFAULT_CLUSTER_AMQP_URL})
  --database-url URL    mysql://... or postgres://...; created if missing and migrated once
                        (default $MATSSOCKET_DB_URL, else ${DEFAULT_CLUSTER_DB_URL})
  --exit-on-failure     stop the whole cluster (exit 1) when a node dies; default: the others keep running
  -h, --help            this text

The nodes also read the environment of npm start (HOST, LOG_LEVEL, MATSSOCKET_QUEUE_PREFIX, ...).
`;

function text(env: Environment, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value.length === 0 ? undefined : value;
}

function integer(value: string, flag: string, min: number, max: number): number {
  if (!/^\d{1,5}$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new ConfigError(flag, `must be an integer ${min}-${max}, got '${value}'`);
  }
  return Number(value);
}

/** The flags, with node's own parse errors (unknown flag, missing value) turned into a ConfigError. */
function flagsOf(argv: readonly string[]): ReturnType<typeof parse> {
  try {
    return parse(argv);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const flag = /'(-[^' ]+)/.exec(message)?.[1] ?? 'arguments';
    throw new ConfigError(flag, message.split('. ')[0] ?? message);
  }
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      nodes: { type: 'string' },
      'base-port': { type: 'string' },
      'amqp-url': { type: 'string' },
      'database-url': { type: 'string' },
      'exit-on-failure': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  }).values;
}

/**
 * Reads `npm run cluster`'s flags and environment.
 * @throws ConfigError naming the flag or environment variable at fault.
 */
export function readClusterOptions(argv: readonly string[], env: Environment): ClusterOptions {
  const flags = flagsOf(argv);
  const nodes = flags.nodes === undefined ? 3 : integer(flags.nodes, '--nodes', 1, MAX_CLUSTER_NODES);
  const basePort =
    flags['base-port'] === undefined ? 8080 : integer(flags['base-port'], '--base-port', 0, 65535);
  if (basePort > 0 && basePort + nodes - 1 > 65535) {
    throw new ConfigError('--base-port', `${basePort} + ${nodes} nodes runs past port 65535`);
  }
  const amqpFlag = flags['amqp-url']?.trim();
  const amqpUrl = amqpFlag || text(env, 'MATSSOCKET_AMQP_URL') || DEFAULT_CLUSTER_AMQP_URL;
  const amqpField = amqpFlag ? '--amqp-url' : 'MATSSOCKET_AMQP_URL';
  if (!/^amqps?:\/\//i.test(amqpUrl)) {
    throw new ConfigError(amqpField, 'must start with amqp:// or amqps:// (the nodes share RabbitMQ)');
  }
  const dbFlag = flags['database-url']?.trim();
  const dbUrl = dbFlag || text(env, 'MATSSOCKET_DB_URL') || DEFAULT_CLUSTER_DB_URL;
  const dbField = dbFlag ? '--database-url' : 'MATSSOCKET_DB_URL';
  const db = parseDatabaseUrl(dbUrl, dbField);
  if (db.dialect === 'sqlite') {
    throw new ConfigError(
      dbField,
      'node processes cannot share SQLite: give a mysql:// or postgres:// URL with --database-url',
    );
  }
  const level = (text(env, 'LOG_LEVEL') ?? 'info').toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new ConfigError('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}, got '${level}'`);
  }
  const adminToken = text(env, 'MATSSOCKET_ADMIN_TOKEN');
  if (adminToken !== undefined && !isValidBearerToken(adminToken)) {
    throw new ConfigError(
      'MATSSOCKET_ADMIN_TOKEN',
      `must be at least ${MIN_BEARER_TOKEN_LENGTH} visible ASCII characters without spaces`,
    );
  }
  return {
    nodes,
    basePort,
    amqpUrl,
    dbUrl,
    db,
    exitOnFailure: flags['exit-on-failure'] ?? false,
    help: flags.help ?? false,
    host: text(env, 'HOST') ?? '127.0.0.1',
    adminToken,
    logLevel: level as LogLevel,
  };
}

/** The name of node `index` (1-based). */
export function clusterNodeName(index: number): string {
  return `cluster-${index}`;
}
