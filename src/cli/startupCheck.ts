import * as amqp from 'amqplib';
import { DataAccessError, ErrorCode, TransportError } from '../errors.ts';
import { createDatabase, redactUrl, type DatabaseUrl } from '../store/database.ts';

/** What the start-up check connects to. */
export interface StartupTargets {
  /** RabbitMQ; undefined: the embedded broker, nothing to check. */
  amqpUrl: string | undefined;
  /** The database; SQLite is a local file or memory, nothing to check; undefined: not checked. */
  db: DatabaseUrl | undefined;
}

type Kind = 'broker' | 'database';

/** What a one-line message tells to change (see {@link ConnectFailureWording}). */
export interface SettingWording {
  /** The setting to fix, e.g. `--amqp-url`. @default the environment variable of `npm start` */
  setting?: string;
  /** The alternative offered after it, e.g. `or unset it for the embedded broker`. */
  fallback?: string;
}

/**
 * How the one-line messages name what to change, for a program configured by other means than `npm start`'s
 * environment (e.g. `npm run cluster`'s flags). Unset parts keep `npm start`'s wording.
 */
export type ConnectFailureWording = Partial<Record<Kind, SettingWording>>;

const SETTINGS: Readonly<Record<Kind, { env: string; server: string; fallback: string }>> = {
  broker: { env: 'MATSSOCKET_AMQP_URL', server: 'RabbitMQ', fallback: 'or unset it for the embedded broker' },
  database: {
    env: 'MATSSOCKET_DB_URL',
    server: 'the database server',
    fallback: 'or unset it for the embedded SQLite file',
  },
};

const DEFAULT_PORTS: Readonly<Record<string, number>> = {
  'amqp:': 5672,
  'amqps:': 5671,
  'mysql:': 3306,
  'mariadb:': 3306,
  'postgres:': 5432,
  'postgresql:': 5432,
};

/** `host:port` of a server URL, with the scheme's default port. */
export function hostAndPort(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname || '127.0.0.1'}:${u.port || (DEFAULT_PORTS[u.protocol] ?? '?')}`;
  } catch {
    return redactUrl(url);
  }
}

/** The first `code` along the `cause` chain (errno like ECONNREFUSED, or a driver's code), and its message. */
function rootCause(err: unknown): { code: string | undefined; message: string } {
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && !Object.values(ErrorCode).includes(code as ErrorCode))
      return { code, message: current.message };
    if (current.cause === undefined) break;
    current = current.cause;
  }
  return { code: undefined, message: current instanceof Error ? current.message : String(current) };
}

/**
 * One line for an operator: what could not be reached (host and port, never the password), the cause with its
 * code, and what to change.
 */
export function describeConnectFailure(
  kind: Kind,
  url: string,
  err: unknown,
  wording: ConnectFailureWording = {},
): string {
  const { server } = SETTINGS[kind];
  const env = wording[kind]?.setting ?? SETTINGS[kind].env;
  const fallback = wording[kind]?.fallback ?? SETTINGS[kind].fallback;
  const where = `${server} at ${hostAndPort(url)}`;
  const { code, message } = rootCause(err);
  const database = new URL(url, 'x:/').pathname.replace(/^\//, '') || '(none)';
  switch (code) {
    case 'ECONNREFUSED':
      return `cannot reach ${where}: connection refused (ECONNREFUSED); start it there, or fix ${env}, ${fallback}`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot reach ${where}: unknown host (${code}); fix the host in ${env}, ${fallback}`;
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `cannot reach ${where}: no answer (${code}); check the host, port and firewall, or fix ${env}`;
    case 'ER_BAD_DB_ERROR':
    case '3D000':
      return `${where} has no database '${database}' (${code}: ${message}); create it (CREATE DATABASE ${database}) or fix ${env}`;
    case 'ER_ACCESS_DENIED_ERROR':
    case 'ER_ACCESS_DENIED_NO_PASSWORD_ERROR':
    case '28P01':
    case '28000':
      return `${where} refused the login (${code}: ${message}); fix the user and password in ${env}`;
    case undefined:
    default:
      break;
  }
  if (/ACCESS.REFUSED/i.test(message))
    return `${where} refused the login (ACCESS_REFUSED); fix the user and password in ${env}`;
  // amqplib reports an unknown or forbidden vhost as the server closing the connection instead of opening it.
  if (/NOT.ALLOWED|Expected ConnectionOpenOk/i.test(message))
    return `${where} refused the virtual host '${decodeURIComponent(database)}' (NOT_ALLOWED); fix the vhost in ${env}`;
  if (/timeout/i.test(message))
    return `cannot reach ${where}: no answer (timeout: ${message}); check the host, port and firewall, or fix ${env}`;
  return `cannot use ${where}: ${code ? `${code}: ` : ''}${message}; fix ${env}, ${fallback}`;
}

/**
 * Connects once to the configured broker and database before anything starts, so that a wrong URL or a server
 * that is down ends the program with one line ({@link describeConnectFailure}) instead of every endpoint and
 * job logging its own failure. The nodes connect again on their own; this only tells early.
 *
 * @param timeoutMs how long each connection attempt may take, in ms. @default 10000 (the transports' and
 *   databases' connect timeout)
 * @param wording how the messages name the settings, when they are not `npm start`'s environment variables
 * @throws DataAccessError (DATA_ACCESS) or TransportError (TRANSPORT_UNAVAILABLE) with that line as message
 */
export async function checkStartupTargets(
  targets: StartupTargets,
  timeoutMs = 10_000,
  wording: ConnectFailureWording = {},
): Promise<void> {
  const { db, amqpUrl } = targets;
  if (db !== undefined && db.dialect !== 'sqlite') {
    const knex = createDatabase(db, { connectTimeoutMs: timeoutMs, poolMax: 1 });
    try {
      await knex.raw('select 1');
    } catch (err) {
      throw new DataAccessError(describeConnectFailure('database', db.target, err, wording), { cause: err });
    } finally {
      await knex.destroy();
    }
  }
  if (amqpUrl !== undefined) {
    let model: amqp.ChannelModel;
    try {
      model = await amqp.connect(amqpUrl, { timeout: timeoutMs });
    } catch (err) {
      throw new TransportError(
        ErrorCode.TRANSPORT_UNAVAILABLE,
        describeConnectFailure('broker', amqpUrl, err, wording),
        { cause: err },
      );
    }
    await model.close();
  }
}
