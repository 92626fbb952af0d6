import type { Knex } from 'knex';
import { isRetryable, toDataAccessError } from './sqlErrors.ts';

export interface TransactionOptions {
  /** Attempts for retryable failures (deadlock, lock timeout, busy), including the first. @default 3 */
  attempts?: number;
  /** Name of the operation, used in error messages. */
  operation: string;
}

/**
 * Runs `fn` in a transaction. With `trx` given, `fn` joins it: no new transaction, no retry (the owner of the
 * transaction decides). Without, a new transaction is opened and retried on deadlock/lock timeout/busy up to
 * `attempts` times with a 10–50 ms random pause (`docs/store.md` 6). Every non-typed failure becomes a
 * `DataAccessError` with the driver's error as `cause`.
 */
export async function inTransaction<T>(
  db: Knex,
  trx: Knex.Transaction | undefined,
  fn: (trx: Knex.Transaction) => Promise<T>,
  options: TransactionOptions,
): Promise<T> {
  if (trx) {
    try {
      return await fn(trx);
    } catch (err) {
      throw toDataAccessError(err, options.operation);
    }
  }
  const attempts = options.attempts ?? 3;
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction(fn);
    } catch (err) {
      if (attempt < attempts && isRetryable(err)) {
        await new Promise((r) => setTimeout(r, 10 + Math.random() * 40));
        continue;
      }
      throw toDataAccessError(err, options.operation);
    }
  }
}

/** Runs a single statement (or read) outside a transaction, mapping failures to `DataAccessError`. */
export async function withDataAccess<T>(operation: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toDataAccessError(err, operation);
  }
}

/**
 * Commits `trx`, a transaction begun without a handler (`db.transaction()`), and throws `DataAccessError` if the
 * COMMIT failed. knex's `trx.commit()` resolves even then and reports the failure only through the
 * transaction's `executionPromise`; a caller trusting it would take an uncommitted transaction for committed. A
 * COMMIT fails e.g. when a write that travels with it fails (MySQL write-behind, docs/store.md §6), or on a
 * PostgreSQL serialization failure. `value` resolves the transaction's `executionPromise` (as a handler's result
 * does): who watches it can tell a commit from an explicit rollback, which resolves it with `undefined`.
 */
export async function commitOrThrow(
  trx: Knex.Transaction,
  operation = 'commit',
  value?: unknown,
): Promise<void> {
  try {
    await trx.commit(value);
    await trx.executionPromise;
  } catch (err) {
    throw toDataAccessError(err, operation);
  }
}
