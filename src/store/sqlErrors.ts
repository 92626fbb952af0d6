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

/** Socket-level failures of a database connection (refused, reset, broken, unreachable, timed out). */
const NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  // mysql2
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_ENQUEUE_AFTER_FATAL_ERROR',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_SERVER_SHUTDOWN',
  'ER_CON_COUNT_ERROR',
  // PostgreSQL: admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections
  '57P01',
  '57P02',
  '57P03',
  '53300',
]);

/**
 * The database cannot be reached right now (down, restarting, connections cut, pool exhausted), as opposed to a
 * statement failing on a working database: waiting and trying again is the remedy, not giving up on the work. Looks
 * through `cause` chains (our {@link DataAccessError} wraps the driver's error).
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  return inCauseChain(err, (e) => {
    const x = e as DriverError & { fatal?: unknown; name?: unknown; message?: unknown };
    if (typeof x.code === 'string' && (NETWORK_CODES.has(x.code) || x.code.startsWith('08'))) return true;
    // mysql2 marks errors that end the connection as fatal; knex's pool acquire timeout; pg's dropped socket.
    if (x.fatal === true || x.name === 'KnexTimeoutError') return true;
    if (typeof x.message === 'string' && /^Connection terminated/.test(x.message)) return true;
    return x instanceof DataAccessError && /not reachable within/.test(String(x.message));
  });
}

/** Whether `err` or an error it wraps (`cause` chains, at most 8 deep) passes `test`. */
function inCauseChain(err: unknown, test: (e: object) => boolean): boolean {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 8; depth++) {
    if (test(e)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * Whether `err` or an error it wraps (`cause`, as our {@link DataAccessError} wraps the driver's) is a unique-key
 * violation: what an optimistic batch write that cannot report duplicates row by row fails with.
 */
export function causedByUniqueViolation(err: unknown): boolean {
  return inCauseChain(err, isUniqueViolation);
}

/**
 * MySQL's "Subquery returns more than 1 row": what the guard of an optimistic write raises on purpose when a row it
 * depends on is missing (`storeMessageIdsInInboxAtCommit`: a session closed meanwhile).
 */
export const MYSQL_GUARD_ERRNO = 1242;

/**
 * A write of a `TransactionScript` changed another number of rows than it must (`expectRows`), on a database whose
 * driver reports the count (SQLite, PostgreSQL); on MySQL/MariaDB the guard is a statement raising
 * {@link MYSQL_GUARD_ERRNO}.
 */
export class WriteGuardError extends Error {
  constructor(expected: number, changed: number) {
    super(`write guard: ${changed} rows changed where ${expected} must (a row it depends on is gone)`);
    this.name = 'WriteGuardError';
  }
}

/**
 * Whether an optimistic batch write failed on what its non-optimistic retry tells apart item by item: a unique
 * violation (a duplicate) or a write guard's failure (a missing session), also wrapped (`cause`).
 */
export function causedByOptimisticConflict(err: unknown): boolean {
  return inCauseChain(
    err,
    (e) =>
      isUniqueViolation(e) || (e as DriverError).errno === MYSQL_GUARD_ERRNO || e instanceof WriteGuardError,
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
