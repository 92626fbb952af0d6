import type { Knex } from 'knex';
import { DataAccessError } from '../../errors.ts';
import { isRetryable, toDataAccessError } from '../sqlErrors.ts';
import type { LimitedSessionRegistration, SessionRegistrationInput } from '../storeTypes.ts';
import { registerNewSession } from './sessionQueries.ts';
import { num, T, type StoreContext } from './StoreContext.ts';

/** First key of the PostgreSQL two-key advisory lock, so user locks do not collide with other users of it. */
const PG_LOCK_CLASS = 0x4d5353; // "MSS"

/** Per store: the tail of each user's in-process queue of limited registrations (MySQL/MariaDB). */
const userQueues = new WeakMap<StoreContext, Map<string, Promise<unknown>>>();

/**
 * Runs `fn` after the previous call for the same user on this store has settled. Why: each waiter on `GET_LOCK`
 * holds a pooled connection, so a HELLO flood of one user would otherwise take the whole pool; queued here, at
 * most one connection per user and node waits for the cluster-wide lock.
 */
function serializedPerUser<T>(ctx: StoreContext, userId: string, fn: () => Promise<T>): Promise<T> {
  let queues = userQueues.get(ctx);
  if (!queues) userQueues.set(ctx, (queues = new Map<string, Promise<unknown>>()));
  const previous = queues.get(userId) ?? Promise.resolve();
  const run = previous.then(fn, fn);
  const tail = run.then(
    () => undefined,
    () => undefined,
  );
  queues.set(userId, tail);
  void tail.then(() => {
    if (queues.get(userId) === tail) queues.delete(userId);
  });
  return run;
}

interface PoolClient {
  acquireConnection(): Promise<unknown>;
  releaseConnection(connection: unknown): Promise<unknown>;
}

/**
 * Counts the user's sessions and inserts the new one in ONE transaction serialized per user across the cluster,
 * so concurrent HELLOs (on any node) can never exceed `maxSessionsPerUser`. A plain count-then-insert lets every
 * concurrent HELLO pass the count.
 *
 * How it serializes per user:
 * - PostgreSQL: `pg_advisory_xact_lock`, released by commit/rollback.
 * - MySQL/MariaDB: a row or gap lock cannot do it, since READ COMMITTED (which the store needs) takes no gap locks
 *   and the user may have no rows yet. `GET_LOCK` is per connection, not per transaction, so the connection is
 *   taken from the pool for the lock, the transaction runs on it, and the lock is released only after the commit:
 *   released before, a waiter could count before our row is visible.
 * - SQLite: the single connection already serializes transactions.
 *
 * @throws MessageIdAlreadyExistsError if the session id exists (nothing stored; retry with a new id).
 */
export function registerNewSessionWithinUserLimit(
  ctx: StoreContext,
  s: SessionRegistrationInput,
  maxSessionsPerUser: number,
): Promise<LimitedSessionRegistration> {
  const body = async (t: Knex.Transaction): Promise<LimitedSessionRegistration> => {
    const row = (await t(T.session).count({ n: '*' }).where('user_id', s.userId).first()) as
      { n: unknown } | undefined;
    const sessionCount = num(row?.n ?? 0);
    if (sessionCount >= maxSessionsPerUser) return { registered: false, sessionCount };
    const createdTs = await registerNewSession(ctx, s, t);
    return { registered: true, createdTs };
  };
  const operation = 'registerNewSessionWithinUserLimit';
  if (ctx.dialect === 'mysql') {
    return serializedPerUser(ctx, s.userId, () => withMysqlUserLock(ctx, s.userId, operation, body));
  }
  return ctx.tx(operation, undefined, async (t) => {
    if (ctx.dialect === 'postgres') {
      await t.raw('SELECT pg_advisory_xact_lock(?, hashtext(?))', [PG_LOCK_CLASS, s.userId]);
    }
    return body(t);
  });
}

async function withMysqlUserLock<T>(
  ctx: StoreContext,
  userId: string,
  operation: string,
  fn: (t: Knex.Transaction) => Promise<T>,
): Promise<T> {
  const pool = ctx.db.client as PoolClient;
  let connection: unknown;
  try {
    connection = await pool.acquireConnection();
  } catch (err) {
    throw toDataAccessError(err, operation);
  }
  // Lock names are server-wide and at most 64 characters: hash the database name with the user id.
  const lockName = "CONCAT('mss_u_', SHA1(CONCAT(DATABASE(), CHAR(0), ?)))";
  let locked = false;
  // GET_LOCK takes whole seconds.
  const lockTimeoutS = Math.ceil(ctx.options.userLockTimeoutMs / 1000);
  try {
    const [rows] = (await ctx.db
      .raw(`SELECT GET_LOCK(${lockName}, ?) AS l`, [userId, lockTimeoutS])
      .connection(connection)) as [{ l: unknown }[]];
    if (num(rows[0]?.l) !== 1) {
      throw new DataAccessError(`${operation}: per-user lock not obtained within ${lockTimeoutS} s`);
    }
    locked = true;
    for (let attempt = 1; ; attempt++) {
      try {
        return await ctx.db.transaction(fn, { connection });
      } catch (err) {
        if (attempt < ctx.options.transactionAttempts && isRetryable(err)) {
          await new Promise((r) => setTimeout(r, 10 + Math.random() * 40));
          continue;
        }
        throw err;
      }
    }
  } catch (err) {
    throw toDataAccessError(err, operation);
  } finally {
    if (locked) {
      await ctx.db
        .raw(`DO RELEASE_LOCK(${lockName})`, [userId])
        .connection(connection)
        .catch((err: unknown) => {
          // A pooled connection must not keep holding the lock: drop it (the server releases it on disconnect),
          // and the pool's validation discards it.
          ctx.options.logger.warn({ err }, 'could not release the per-user lock; dropping the connection');
          (connection as { destroy?: () => void }).destroy?.();
        });
    }
    await pool.releaseConnection(connection);
  }
}
