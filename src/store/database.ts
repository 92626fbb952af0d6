import knexFactory from 'knex';
import type { Knex } from 'knex';
import type pg from 'pg';
import { ConfigError } from '../errors.ts';
import { silentLogger, type Logger } from '../logging.ts';
import { loadDatabaseDriver } from './databaseDriver.ts';
import { foldStatements, type MysqlQueryable } from './mysqlStatementFolding.ts';
import { cachePreparedStatements } from './sqliteStatementCache.ts';

/** The SQL dialects the stores run on. */
export type Dialect = 'mysql' | 'postgres' | 'sqlite';

/** A parsed `MATSSOCKET_DB_URL`-style database URL. */
export interface DatabaseUrl {
  dialect: Dialect;
  /** For mysql/postgres: the URL as given (knex/driver connection string). For sqlite: the file path or `:memory:`. */
  target: string;
}

/**
 * Parses the database URL forms accepted everywhere a database is configured (`docs/store.md` 7):
 * `mysql://…` or `mariadb://…` (MySQL/MariaDB via mysql2), `postgres://…` or `postgresql://…`,
 * `sqlite:<file path>` or `sqlite::memory:`.
 *
 * @param field the configuration field named in the error, e.g. `MATSSOCKET_DB_URL`.
 */
export function parseDatabaseUrl(url: string, field = 'dbUrl'): DatabaseUrl {
  const trimmed = url.trim();
  const lower = trimmed.toLowerCase();
  if (lower.startsWith('mysql://') || lower.startsWith('mariadb://')) {
    return { dialect: 'mysql', target: trimmed.replace(/^mariadb:/i, 'mysql:') };
  }
  if (lower.startsWith('postgres://') || lower.startsWith('postgresql://')) {
    return { dialect: 'postgres', target: trimmed };
  }
  if (lower.startsWith('sqlite:')) {
    const path = trimmed.slice('sqlite:'.length).replace(/^\/\//, '');
    if (path.length === 0)
      throw new ConfigError(field, `'sqlite:' needs a file path or ':memory:', got '${url}'`);
    return { dialect: 'sqlite', target: path };
  }
  throw new ConfigError(
    field,
    `unsupported database URL '${redactUrl(url)}': use mysql://, mariadb://, postgres://, postgresql:// or sqlite:<file>`,
  );
}

/** The URL with any password replaced by `***`, for logs and error messages. */
export function redactUrl(url: string): string {
  return url.replace(/(\/\/[^:/@]+:)[^@]*@/, '$1***@');
}

export interface DatabaseOptions {
  /** Maximum pool size (ignored for SQLite, which always uses one connection). @default 10 */
  poolMax?: number;
  /** How long to wait for a connection (TCP connect, or a free pool slot) before failing, in ms. @default 10000 */
  connectTimeoutMs?: number;
  /** Where knex's own warnings and errors go (pool acquire failures, deprecations). @default silentLogger */
  logger?: Logger;
}

/**
 * Creates a knex instance configured the way the stores need it:
 * - MySQL/MariaDB: utf8mb4, sessions at READ COMMITTED (avoids gap-lock deadlocks, `docs/store.md` 6), BIGINT as number;
 * - PostgreSQL: BIGINT (int8) parsed to number (epoch millis and auto-increment ids fit in 2^53);
 * - SQLite: one connection (all writes serialized), WAL and a busy timeout for files, `useNullAsDefault`.
 *
 * The caller owns the instance and must `destroy()` it.
 */
export function createDatabase(url: string | DatabaseUrl, options: DatabaseOptions = {}): Knex {
  const parsed = typeof url === 'string' ? parseDatabaseUrl(url) : url;
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  const poolMax = options.poolMax ?? 10;
  const log = knexLog(options.logger ?? silentLogger);
  // Knex loads the driver only at the first connection; a missing one is better reported here.
  const driver = loadDatabaseDriver(parsed.dialect);
  switch (parsed.dialect) {
    case 'mysql':
      return knexFactory({
        log,
        client: 'mysql2',
        connection: {
          uri: parsed.target,
          charset: 'utf8mb4',
          connectTimeout: connectTimeoutMs,
          supportBigNumbers: true,
          bigNumberStrings: false,
          // For foldStatements' `BEGIN;<statement>` queries; every statement passes its values as bindings.
          multipleStatements: true,
        } as Knex.MySql2ConnectionConfig,
        pool: {
          min: 0,
          max: poolMax,
          afterCreate(conn: MysqlQueryable, done: (err: Error | null, conn: unknown) => void) {
            foldStatements(conn);
            conn.query('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED', (err: Error | null) =>
              done(err, conn),
            );
          },
        },
        acquireConnectionTimeout: connectTimeoutMs,
      });
    case 'postgres': {
      const { types } = driver as typeof pg;
      return knexFactory({
        log,
        client: 'pg',
        connection: {
          connectionString: parsed.target,
          connectionTimeoutMillis: connectTimeoutMs,
          types: { getTypeParser: pgTypeParser(types) },
        } as Knex.PgConnectionConfig,
        pool: { min: 0, max: poolMax },
        acquireConnectionTimeout: connectTimeoutMs,
      });
    }
    case 'sqlite':
      return knexFactory({
        log,
        client: 'better-sqlite3',
        connection: { filename: parsed.target },
        useNullAsDefault: true,
        pool: {
          min: 1,
          max: 1,
          afterCreate(
            conn: { pragma(sql: string): unknown; prepare(sql: string): unknown },
            done: (err: Error | null, conn: unknown) => void,
          ) {
            try {
              if (parsed.target !== ':memory:') conn.pragma('journal_mode = WAL');
              conn.pragma('busy_timeout = 5000');
              cachePreparedStatements(conn);
              done(null, conn);
            } catch (err) {
              done(err as Error, conn);
            }
          },
        },
        acquireConnectionTimeout: connectTimeoutMs,
      });
  }
}

/** The dialect of a knex instance (or transaction). */
export function dialectOf(db: Knex): Dialect {
  const client = (db.client as { config: { client: unknown } }).config.client;
  const name = typeof client === 'string' ? client : String((client as { name?: string })?.name ?? client);
  if (name.includes('mysql')) return 'mysql';
  if (name.includes('pg') || name.includes('postgres')) return 'postgres';
  if (name.includes('sqlite')) return 'sqlite';
  throw new ConfigError('db', `unsupported knex client '${name}'`);
}

const PG_INT8_OID = 20;

function pgTypeParser(types: typeof pg.types) {
  return (oid: number, format?: string): ((value: string) => unknown) => {
    if (oid === PG_INT8_OID) return (v: string) => Number(v);
    return types.getTypeParser(oid, format as 'text') as (value: string) => unknown;
  };
}

/** Routes knex's console logging (it otherwise writes pool and connection errors to stderr) to our logger. */
function knexLog(logger: Logger): Knex.Logger {
  const text = (m: unknown): string =>
    typeof m === 'string' ? m : m instanceof Error ? m.message : JSON.stringify(m);
  return {
    warn: (m: unknown) => logger.warn({ component: 'knex' }, text(m)),
    error: (m: unknown) => logger.error({ component: 'knex' }, text(m)),
    deprecate: (method: string, alternative: string) =>
      logger.warn({ component: 'knex' }, `${method} is deprecated, use ${alternative}`),
    debug: (m: unknown) => logger.debug({ component: 'knex' }, text(m)),
  };
}
