import type { Knex } from 'knex';
import { DataAccessError, ErrorCode } from '../errors.ts';
import { dialectOf } from './database.ts';
import { toDataAccessError } from './sqlErrors.ts';

/** How long a migrator waits for another process's migration to finish, in ms. */
export const DEFAULT_MIGRATION_LOCK_TIMEOUT_MS = 120_000;

/**
 * Runs `migrate` while holding a database-wide lock, so nodes booting together migrate one after the other.
 *
 * knex's own lock table does not cover this: the first migration creates `knex_migrations_*` and its lock table,
 * and nodes starting at the same moment all try to (on MariaDB 2 of 3 concurrent migrators failed on
 * `CREATE TABLE knex_migrations_*`); once the tables exist, a migrator that finds knex's lock taken fails at once
 * instead of waiting. So a dialect lock is taken first: MySQL/MariaDB `GET_LOCK` (named after the database, since
 * it is server-wide), PostgreSQL a transaction-scoped advisory lock (scoped to the database). It is held by one
 * pooled connection (a transaction) while knex migrates on others. Where that cannot be done (SQLite, whose
 * one connection knex migrates on; a pool of one), a migrator that collides with another (a migration table
 * created under it, knex's lock taken) tries again after a short random pause until `timeoutMs`.
 *
 * @throws DataAccessError `MIGRATION_LOCK_TIMEOUT` when another migrator holds the lock longer than `timeoutMs`.
 */
export async function withMigrationLock<T>(
  knex: Knex,
  migrate: () => Promise<T>,
  timeoutMs = DEFAULT_MIGRATION_LOCK_TIMEOUT_MS,
): Promise<T> {
  const dialect = dialectOf(knex);
  const poolMax = (knex.client as { pool?: { max?: number } }).pool?.max ?? 1;
  if (dialect === 'sqlite' || poolMax < 2) return retryOnCollision(migrate, timeoutMs);
  return lockedTransaction(knex, dialect, migrate, timeoutMs).catch((err: unknown) => {
    // The migration's own errors are DataAccessErrors already; a failure to connect or lock is wrapped here.
    throw toDataAccessError(err, 'taking the migration lock');
  });
}

function lockedTransaction<T>(
  knex: Knex,
  dialect: 'mysql' | 'postgres',
  migrate: () => Promise<T>,
  timeoutMs: number,
): Promise<T> {
  return knex.transaction(async (trx) => {
    if (dialect === 'mysql') {
      const seconds = Math.max(1, Math.ceil(timeoutMs / 1000));
      const [rows] = (await trx.raw(`SELECT GET_LOCK(CONCAT('matssocket_migrate:', DATABASE()), ?) AS got`, [
        seconds,
      ])) as [{ got: number | null }[]];
      if (Number(rows[0]?.got) !== 1) throw lockTimeout(timeoutMs);
      try {
        return await migrate();
      } finally {
        await trx.raw(`SELECT RELEASE_LOCK(CONCAT('matssocket_migrate:', DATABASE()))`);
      }
    }
    await trx.raw(`SET LOCAL lock_timeout = ${Math.max(1, Math.trunc(timeoutMs))}`);
    try {
      await trx.raw(`SELECT pg_advisory_xact_lock(hashtext('matssocket_migrate'))`);
    } catch (err) {
      throw lockTimeout(timeoutMs, err);
    }
    return migrate();
  });
}

/** The errors of two knex migrators running into each other; anything else is a real failure. */
const COLLISION = /already exists|already locked|SQLITE_BUSY|database is locked/i;

async function retryOnCollision<T>(migrate: () => Promise<T>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await migrate();
    } catch (err) {
      if (!COLLISION.test(messagesOf(err))) throw err;
      if (Date.now() >= deadline) throw lockTimeout(timeoutMs, err);
      await new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 80));
    }
  }
}

function messagesOf(err: unknown): string {
  let text = '';
  for (let e = err; e instanceof Error; e = e.cause) text += `${e.message}\n`;
  return text;
}

function lockTimeout(timeoutMs: number, cause?: unknown): DataAccessError {
  return new DataAccessError(
    `another process has been migrating this database for more than ${timeoutMs} ms; wait for it, or check for a ` +
      `stuck migrator (its connection holds the lock)`,
    { code: ErrorCode.MIGRATION_LOCK_TIMEOUT, cause },
  );
}
