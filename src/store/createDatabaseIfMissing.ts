import { ConfigError } from '../errors.ts';
import { createDatabase, redactUrl, type DatabaseUrl } from './database.ts';
import { toDataAccessError } from './sqlErrors.ts';

/** Database names this creates: plain identifiers (they are quoted, but never escaped). */
const DATABASE_NAME = /^[A-Za-z0-9_$-]{1,63}$/;

/** PostgreSQL's `duplicate_database`: another process created it between our check and our CREATE. */
const PG_DUPLICATE_DATABASE = '42P04';

/** Options of {@link createDatabaseIfMissing}. */
export interface CreateDatabaseOptions {
  /** How long to wait for the server connection, in ms. @default 10000 */
  connectTimeoutMs?: number;
  /** The configuration field named in a {@link ConfigError}. @default 'dbUrl' */
  field?: string;
}

/**
 * Creates the database a MySQL/MariaDB or PostgreSQL URL names, unless it exists. It connects to the server
 * without that database (PostgreSQL: to its `postgres` maintenance database), so the URL's user needs the right to
 * create databases. Meant for development commands such as `npm run cluster`; a production database is its
 * operator's business. SQLite creates its file on first use: nothing to do.
 *
 * @returns true when this call created the database.
 * @throws ConfigError when the URL names no database, or a name that is not a plain identifier.
 * @throws DataAccessError (`DATA_ACCESS`) with the driver's error as `cause` when the server cannot be reached or
 *   refuses.
 */
export async function createDatabaseIfMissing(
  db: DatabaseUrl,
  options: CreateDatabaseOptions = {},
): Promise<boolean> {
  if (db.dialect === 'sqlite') return false;
  const field = options.field ?? 'dbUrl';
  const url = new URL(db.target);
  const name = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (name.length === 0) throw new ConfigError(field, 'the URL names no database (add /<database>)');
  if (!DATABASE_NAME.test(name)) {
    throw new ConfigError(field, `database name '${name}' must match ${DATABASE_NAME.source}`);
  }
  url.pathname = db.dialect === 'postgres' ? '/postgres' : '/';
  const server = createDatabase(
    { dialect: db.dialect, target: url.href },
    { poolMax: 1, connectTimeoutMs: options.connectTimeoutMs ?? 10_000 },
  );
  try {
    if (db.dialect === 'mysql') {
      const [rows] = (await server.raw(
        'SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?',
        [name],
      )) as [unknown[]];
      if (rows.length > 0) return false;
      // IF NOT EXISTS: another process may create it between the check and here.
      await server.raw(`CREATE DATABASE IF NOT EXISTS \`${name}\``);
      return true;
    }
    const { rows } = await server.raw<{ rows: unknown[] }>('SELECT 1 FROM pg_database WHERE datname = ?', [
      name,
    ]);
    if (rows.length > 0) return false;
    try {
      await server.raw(`CREATE DATABASE "${name}"`);
      return true;
    } catch (err) {
      if ((err as { code?: unknown }).code === PG_DUPLICATE_DATABASE) return false;
      throw err;
    }
  } catch (err) {
    throw toDataAccessError(err, `creating database '${name}' on ${redactUrl(url.href)}`);
  } finally {
    await server.destroy();
  }
}
