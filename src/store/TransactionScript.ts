import type { Knex } from 'knex';
import type { Dialect } from './database.ts';
import { readAtCommit, SCRIPT, writeBehind, type MysqlQueryable } from './mysqlStatementFolding.ts';
import { isRetryable, toDataAccessError } from './sqlErrors.ts';
import { commitOrThrow } from './transactions.ts';

/** One SQL statement with `?` placeholders and its values. */
export interface Statement {
  readonly sql: string;
  readonly bindings: readonly Knex.RawBinding[];
}

/**
 * The statement of a knex builder (built on any knex instance of the dialect), with knex's `?` placeholders (a
 * `raw` of it renders it again, e.g. as `$1` on PostgreSQL).
 */
export function statementOf(qb: Knex.QueryBuilder | Knex.Raw): Statement {
  const { sql, bindings } = qb.toSQL();
  return { sql, bindings: bindings as Knex.RawBinding[] };
}

/** A read waiting for the query that answers it. */
interface Held {
  statement: Statement;
  read?: { resolve(rows: unknown): void; reject(err: unknown): void };
}

type Outcome = 'committed' | 'rolled back';

/**
 * A transaction whose hot-path statements are written as a script: on MySQL/MariaDB, writes whose results nobody
 * reads and reads answered at the commit ({@link write}, {@link readAtCommit}) are held, and the commit sends the
 * whole transaction as ONE query, `BEGIN;…;COMMIT`, on a pooled connection, without a knex transaction (whose
 * set-up costs ~0.3 ms of CPU, more than the round trip it wraps, measured in docs/benchmarks.md). Anything else
 * asks for the knex transaction ({@link knex}): it begins then, the held statements go first (with its next
 * statement, `mysqlStatementFolding.ts`), and the rest runs through knex as before. On the other dialects it is a
 * knex transaction from the first statement.
 *
 * As with write-behind writes, a failing statement fails the commit (and the transaction is rolled back), so only
 * statements whose failure nobody handles on its own belong in {@link write}.
 */
export class TransactionScript {
  readonly #db: Knex;
  readonly #dialect: Dialect;
  /** A caller's transaction this one runs in: its owner commits. */
  readonly #joined: Knex.Transaction | undefined;
  #held: Held[] = [];
  #trx: Promise<Knex.Transaction> | undefined;
  /** Reads issued on the knex transaction: each settles once the read reached the connection. */
  #handedOver: Promise<void>[] = [];
  #outcome: Outcome | undefined;
  #settle!: (outcome: Outcome) => void;
  /**
   * How the transaction ended, once it did: `committed` after a successful {@link commit}, `rolled back` after a
   * failed one or {@link rollback}. Never settles for a joined script (see {@link joined}).
   */
  readonly settled = new Promise<Outcome>((resolve) => (this.#settle = resolve));

  constructor(db: Knex, dialect: Dialect, joined?: Knex.Transaction) {
    this.#db = db;
    this.#dialect = dialect;
    this.#joined = joined;
    if (joined) this.#trx = Promise.resolve(joined);
  }

  /** A script over `trx`, a transaction its caller owns (commits or rolls back). */
  static joining(trx: Knex.Transaction, dialect: Dialect): TransactionScript {
    return new TransactionScript(trx, dialect, trx);
  }

  get dialect(): Dialect {
    return this.#dialect;
  }

  /** The caller's transaction a joined script runs in (its owner commits), else undefined. */
  get joined(): Knex.Transaction | undefined {
    return this.#joined;
  }

  /** True once the knex transaction was asked for: the statements then go through it. */
  get usesKnex(): boolean {
    return this.#trx !== undefined;
  }

  /**
   * Adds a write whose result nobody reads. It is sent with the commit (or, once the knex transaction exists, with
   * its next statement); its failure fails the commit.
   */
  async write(statement: Statement): Promise<void> {
    this.#checkOpen();
    if (!this.#trx && this.#dialect === 'mysql') {
      this.#held.push({ statement });
      return;
    }
    const trx = await this.knex();
    const raw = trx.raw(statement.sql, statement.bindings);
    await (this.#dialect === 'mysql' ? writeBehind(raw) : raw);
  }

  /**
   * Adds a read answered with the commit, e.g. of the rows the script's writes locked: its rows come once the
   * transaction has committed, so the caller must not await them before {@link commit}. Fails if the commit does.
   * On dialects without scripts it is read at once.
   */
  readAtCommit<T>(statement: Statement): Promise<T[]> {
    this.#checkOpen();
    if (!this.#trx && this.#dialect === 'mysql') {
      return new Promise<T[]>((resolve, reject) => {
        this.#held.push({ statement, read: { resolve: (rows) => resolve(rows as T[]), reject } });
      });
    }
    return new Promise<T[]>((resolve, reject) => {
      this.#handedOver.push(
        this.knex().then(
          (trx) => this.#readOnKnex(trx, { statement, read: { resolve: (r) => resolve(r as T[]), reject } }),
          (err: unknown) => reject(err as Error),
        ),
      );
    });
  }

  /** The knex transaction, begun on the first call; the statements held so far go first. */
  knex(): Promise<Knex.Transaction> {
    this.#trx ??= this.#db.transaction().then(
      async (trx) => {
        const held = this.#held;
        this.#held = [];
        for (const h of held) {
          if (h.read) this.#handedOver.push(this.#readOnKnex(trx, h));
          else await writeBehind(trx.raw(h.statement.sql, h.statement.bindings));
        }
        return trx;
      },
      (err: unknown) => {
        throw toDataAccessError(err, 'begin transaction');
      },
    );
    return this.#trx;
  }

  /**
   * Commits: the held statements in one query, or the knex transaction. Throws the driver's failure (the
   * transaction is then rolled back, and the reads fail with it). Not for a joined script (its owner commits).
   */
  async commit(): Promise<void> {
    this.#checkOpen();
    if (this.#joined)
      throw new Error('a joined TransactionScript is committed by the owner of its transaction');
    this.#outcome = 'committed';
    let failed = false;
    try {
      await this.#commit();
    } catch (err) {
      failed = true;
      throw err;
    } finally {
      this.#settle(failed ? 'rolled back' : 'committed');
    }
  }

  async #commit(): Promise<void> {
    if (this.#trx) {
      const trx = await this.#trx;
      await Promise.all(this.#handedOver);
      try {
        // Not `undefined`: the Mats outbox publishes a joined initiation's rows at once only when it can tell a
        // commit from a rollback (`OutboxPublisher.afterCallerCommit`).
        await commitOrThrow(trx, 'commit', 'committed');
      } catch (err) {
        this.#outcome = 'rolled back';
        throw err;
      }
      return;
    }
    const held = this.#held;
    this.#held = [];
    if (held.length === 0) return;
    let results: unknown[];
    try {
      results = await this.#send(
        ['BEGIN', ...held.map((h) => h.statement.sql), 'COMMIT'].join(';'),
        held.flatMap((h) => h.statement.bindings),
      );
    } catch (err) {
      this.#outcome = 'rolled back';
      for (const h of held) h.read?.reject(err);
      throw err;
    }
    // results[0] is the BEGIN's.
    held.forEach((h, i) => h.read?.resolve(results[i + 1]));
  }

  /**
   * Sends the script as one query on a connection of knex's pool, straight to the driver: knex's query runner would
   * parse and render the whole text and its bindings once more, and the driver renders them anyway. knex's `query`
   * event is emitted for it, so whoever watches the instance's queries (metrics, the benchmarks' counters) sees it.
   * @returns the result of each statement, in order.
   */
  async #send(sql: string, bindings: readonly Knex.RawBinding[]): Promise<unknown[]> {
    const client = this.#db.client as PoolClient;
    const conn = await client.acquireConnection();
    try {
      const options = { sql, [SCRIPT]: true };
      this.#db.emit('query', { sql, bindings, options, method: 'raw' });
      return await new Promise<unknown[]>((resolve, reject) => {
        conn.query(options, bindings, (err: Error | null, rows?: unknown) => {
          if (err) reject(err);
          else resolve(rows as unknown[]);
        });
      });
    } finally {
      await client.releaseConnection(conn);
    }
  }

  /** Rolls back whatever began; the held statements are dropped. Never throws. */
  async rollback(): Promise<void> {
    if (this.#outcome !== undefined || this.#joined) return;
    this.#outcome = 'rolled back';
    this.#settle('rolled back');
    const held = this.#held;
    this.#held = [];
    const err = new Error('the transaction was rolled back before this read was sent');
    for (const h of held) h.read?.reject(err);
    if (!this.#trx) return;
    const trx = await this.#trx.catch(() => undefined);
    if (trx && !trx.isCompleted()) await trx.rollback().catch(() => undefined);
  }

  /** Issues a held read on the knex transaction; settles once it reached the connection (or failed). */
  #readOnKnex(trx: Knex.Transaction, h: Held): Promise<void> {
    const raw = trx.raw(h.statement.sql, h.statement.bindings);
    const qb = this.#dialect === 'mysql' ? readAtCommit(raw) : raw;
    // knex hands a query to the driver right after its `query` event, in the same turn.
    const handedOver = new Promise<void>((resolve) => {
      qb.on('query', () => resolve());
    });
    // A raw result is the driver's: [rows, fields] from mysql2, { rows } from pg, rows from better-sqlite3.
    const rows = qb.then((r: unknown): unknown =>
      Array.isArray(r) && this.#dialect === 'mysql'
        ? (r as unknown[])[0]
        : ((r as { rows?: unknown }).rows ?? r),
    );
    rows.then(
      (r) => h.read!.resolve(r),
      (err: unknown) => h.read!.reject(err),
    );
    return Promise.race([handedOver, rows.then(noop, noop)]);
  }

  #checkOpen(): void {
    if (this.#outcome !== undefined) throw new Error(`the transaction has already been ${this.#outcome}`);
  }
}

function noop(): void {}

/** What {@link TransactionScript} uses of knex's client: its connection pool (public methods of knex's `Client`). */
interface PoolClient {
  acquireConnection(): Promise<MysqlQueryable>;
  releaseConnection(connection: MysqlQueryable): Promise<void>;
}

/**
 * Runs `fn` with a new {@link TransactionScript} and commits it, retrying the whole function on deadlock, lock
 * timeout or busy up to `attempts` times with a 10–50 ms pause (as `inTransaction`). Failures become
 * `DataAccessError` with the driver's error as `cause`.
 */
export async function inTransactionScript<T>(
  db: Knex,
  dialect: Dialect,
  fn: (tx: TransactionScript) => Promise<T>,
  options: { operation: string; attempts: number },
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const tx = new TransactionScript(db, dialect);
    try {
      const result = await fn(tx);
      await tx.commit();
      return result;
    } catch (err) {
      await tx.rollback();
      if (attempt < options.attempts && isRetryable(err)) {
        await new Promise((r) => setTimeout(r, 10 + Math.random() * 40));
        continue;
      }
      throw toDataAccessError(err, options.operation);
    }
  }
}
