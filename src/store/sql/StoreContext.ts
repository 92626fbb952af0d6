import type { Knex } from 'knex';
import { chunk } from '../../util/chunk.ts';
import type { Dialect } from '../database.ts';
import type { ResolvedStoreOptions } from '../StoreOptions.ts';
import { isRetryable, toDataAccessError } from '../sqlErrors.ts';
import { inTransaction, withDataAccess } from '../transactions.ts';
import { inTransactionScript, type TransactionScript } from '../TransactionScript.ts';

/** Table names (`docs/store.md` 4). */
export const T = {
  session: 'mats_socket_session',
  inbox: 'mats_socket_inbox',
  outbox: 'mats_socket_outbox',
  requestOut: 'mats_socket_request_out',
  dlq: 'mats_socket_dlq',
  topic: 'mats_socket_topic',
  topicLog: 'mats_socket_topic_log',
  node: 'mats_socket_node',
} as const;

/** Mutable per-store state the operations need across calls. */
export interface StoreState {
  /** Upper bound (stored_timestamp) of the scavenger's previous window; undefined before the first run. */
  scavengedUpTo: number | undefined;
}

/**
 * What every operation module works with: the database, its dialect, the resolved options and the transaction
 * helpers. One per store instance.
 */
export class StoreContext {
  readonly db: Knex;
  readonly dialect: Dialect;
  readonly options: ResolvedStoreOptions;
  readonly state: StoreState = { scavengedUpTo: undefined };

  constructor(db: Knex, dialect: Dialect, options: ResolvedStoreOptions) {
    this.db = db;
    this.dialect = dialect;
    this.options = options;
  }

  now(): number {
    return this.options.now();
  }

  /**
   * Runs `fn` in `trx` (joined: no retry) or in a new, retried transaction. `owned` tells `fn` whether it owns the
   * transaction, i.e. whether a failure rolls everything back anyway (so no savepoint is needed to survive it).
   */
  tx<T>(
    operation: string,
    trx: Knex.Transaction | undefined,
    fn: (trx: Knex.Transaction, owned: boolean) => Promise<T>,
  ): Promise<T> {
    return inTransaction(this.db, trx, (t) => fn(t, trx === undefined), {
      operation,
      attempts: this.options.transactionAttempts,
    });
  }

  /** Runs `fn` with a new, retried {@link TransactionScript} and commits it. */
  script<T>(operation: string, fn: (tx: TransactionScript) => Promise<T>): Promise<T> {
    return inTransactionScript(this.db, this.dialect, fn, {
      operation,
      attempts: this.options.transactionAttempts,
    });
  }

  /**
   * Runs writes joined to `trx`, or else in a new retried transaction when `multiStatement`, or else as one
   * autocommitted statement (retried on deadlock/lock timeout/busy): a transaction around a single statement would
   * only add BEGIN/COMMIT round trips on the hot paths.
   */
  async write<T>(
    operation: string,
    trx: Knex.Transaction | undefined,
    fn: (db: Knex) => Promise<T>,
    multiStatement = false,
  ): Promise<T> {
    if (trx || multiStatement) return this.tx(operation, trx, (t) => fn(t));
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn(this.db);
      } catch (err) {
        if (attempt < this.options.transactionAttempts && isRetryable(err)) {
          await new Promise((r) => setTimeout(r, 10 + Math.random() * 40));
          continue;
        }
        throw toDataAccessError(err, operation);
      }
    }
  }

  /** Runs a read (or single statement) on `trx` if given, else on the pool, mapping failures to DataAccessError. */
  read<T>(operation: string, trx: Knex.Transaction | undefined, fn: (db: Knex) => Promise<T>): Promise<T> {
    return withDataAccess(operation, () => fn(trx ?? this.db));
  }

  /** Splits ids into IN-list chunks of at most `inClauseChunk`. */
  chunks<V>(ids: readonly V[]): V[][] {
    return chunk(ids, this.options.inClauseChunk);
  }

  /**
   * Runs `fn` so that a failure in it (e.g. a unique violation) rolls back only `fn`'s work and leaves `trx` usable.
   * That takes a savepoint (a knex nested transaction) on PostgreSQL, where any error aborts the whole transaction,
   * and wherever `fn` runs several statements. On MySQL/MariaDB and SQLite a single failed statement is rolled back
   * by itself, so one statement needs no savepoint and saves two round trips. None is needed either when `owned`
   * and `fn`'s failure ends the transaction anyway (`continueAfterFailure` false).
   */
  async savepoint<T>(
    trx: Knex.Transaction,
    fn: (trx: Knex.Transaction) => Promise<T>,
    opts: { owned: boolean; statements: number; continueAfterFailure?: boolean },
  ): Promise<T> {
    const needed = opts.continueAfterFailure || !opts.owned;
    if (!needed || (opts.statements <= 1 && this.dialect !== 'postgres')) return fn(trx);
    return trx.transaction(fn);
  }

  /**
   * The table for a SELECT/UPDATE, with `FORCE INDEX (index)` on MySQL/MariaDB. Why: the outbox and inbox are often
   * tiny (rows leave on ACK), and for a multi-key WHERE the optimizer then picks a full scan. Under READ COMMITTED a
   * locking scan still waits on every row other transactions hold, matching or not, so concurrent batches of
   * different sessions would lock-wait and deadlock. PostgreSQL locks only the rows it changes; SQLite has one writer.
   */
  table(db: Knex, table: string, index: string): Knex.QueryBuilder {
    return this.dialect === 'mysql' ? db(db.raw('?? FORCE INDEX (??)', [table, index])) : db(table);
  }

  /**
   * Runs the DELETE of `qb` (built on `db(table)`), with `FORCE INDEX` on MySQL/MariaDB (see {@link table}), whose
   * single-table DELETE takes no index hint: it is sent in the multi-table form `DELETE t FROM t FORCE INDEX (…)`.
   * @returns the affected row count.
   */
  async deleteWithIndex(db: Knex, qb: Knex.QueryBuilder, table: string, index: string): Promise<number> {
    if (this.dialect !== 'mysql') return affected(await qb.delete());
    const { sql, bindings } = qb.delete().toSQL();
    const prefix = `delete from \`${table}\``;
    if (!sql.startsWith(prefix)) throw new Error(`unexpected DELETE shape: ${sql}`);
    const hinted = `delete \`${table}\` from \`${table}\` FORCE INDEX (\`${index}\`)${sql.slice(prefix.length)}`;
    const [result] = (await db.raw(hinted, bindings as Knex.RawBinding[])) as [{ affectedRows: number }];
    return result.affectedRows;
  }

  /** Adds `FOR SHARE` (MySQL: `LOCK IN SHARE MODE`); nothing on SQLite, whose single connection serializes. */
  forShare<Q extends Knex.QueryBuilder>(qb: Q): Q {
    return this.dialect === 'sqlite' ? qb : (qb.forShare() as Q);
  }

  /** Adds `FOR UPDATE`; nothing on SQLite. */
  forUpdate<Q extends Knex.QueryBuilder>(qb: Q): Q {
    return this.dialect === 'sqlite' ? qb : (qb.forUpdate() as Q);
  }
}

/** `NOT EXISTS`-able subquery: a row of `table` whose `column` equals `outerColumn` (a column of the outer query). */
export function rowOf(db: Knex, table: string, column: string, outerColumn: string): Knex.QueryBuilder {
  return db
    .select(db.raw('1'))
    .from(`${table} as x`)
    .whereRaw('?? = ??', [`x.${column}`, outerColumn]);
}

/** The number a driver returned for a BIGINT/COUNT (PostgreSQL may return strings). */
export function num(v: unknown): number {
  return typeof v === 'number' ? v : Number(v);
}

/** Like {@link num} but keeps null/undefined as null. */
export function numOrNull(v: unknown): number | null {
  return v === null || v === undefined ? null : num(v);
}

/** Affected-row count from a knex update/delete result (a number on every dialect). */
export function affected(result: unknown): number {
  return typeof result === 'number' ? result : num(result);
}
