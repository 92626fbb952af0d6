import { DataAccessError, MatsSocketError } from '../errors.ts';

interface DriverError {
  code?: unknown;
  errno?: unknown;
}

/**
 * A unique-key violation on any of the three databases: MySQL/MariaDB errno 1062 (`ER_DUP_ENTRY`),
 * PostgreSQL SQLSTATE 23505, SQLite `SQLITE_CONSTRAINT_PRIMARYKEY` / `SQLITE_CONSTRAINT_UNIQUE`.
 */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as DriverError | null;
  if (!e || typeof e !== 'object') return false;
  return (
    e.errno === 1062 ||
    e.code === 'ER_DUP_ENTRY' ||
    e.code === '23505' ||
    e.code === 'SQLITE_CONSTRAINT_PRIMARYKEY' ||
    e.code === 'SQLITE_CONSTRAINT_UNIQUE'
  );
}

/**
 * A failure after which retrying the whole transaction may succeed: MySQL deadlock (1213) and lock wait
 * timeout (1205), PostgreSQL serialization failure (40001) and deadlock (40P01), SQLite busy/locked.
 */
export function isRetryable(err: unknown): boolean {
  const e = err as DriverError | null;
  if (!e || typeof e !== 'object') return false;
  return (
    e.errno === 1213 ||
    e.errno === 1205 ||
    e.code === 'ER_LOCK_DEADLOCK' ||
    e.code === 'ER_LOCK_WAIT_TIMEOUT' ||
    e.code === '40001' ||
    e.code === '40P01' ||
    e.code === 'SQLITE_BUSY' ||
    e.code === 'SQLITE_LOCKED' ||
    // Extended codes (better-sqlite3 reports them): SQLITE_BUSY_SNAPSHOT is a deferred transaction whose read
    // snapshot went stale before its first write, when several connections share a database file.
    (typeof e.code === 'string' && (e.code.startsWith('SQLITE_BUSY_') || e.code.startsWith('SQLITE_LOCKED_')))
  );
}

/**
 * Passes our own typed errors through unchanged and wraps anything else (driver errors, pool timeouts,
 * connection refusals) in a {@link DataAccessError} with the original as `cause`.
 */
export function toDataAccessError(err: unknown, operation: string): Error {
  if (err instanceof MatsSocketError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  return new DataAccessError(`${operation} failed: ${detail}`, { cause: err });
}
