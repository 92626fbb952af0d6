import type { Knex } from 'knex';
import type { Dialect } from './database.ts';
import { readAtCommit, writeBehind } from './mysqlStatementFolding.ts';
import { rowCountGuard, runScript } from './scriptRunners.ts';
import type { Statement } from './sqlText.ts';
import { isRetryable, toDataAccessError, WriteGuardError } from './sqlErrors.ts';
import { commitOrThrow } from './transactions.ts';

/** A statement not sent yet; `read` when a caller waits for its rows. */
interface Held {
  statement: Statement;
  read?: { resolve(rows: unknown): void; reject(err: unknown): void };
  /** The number of rows the write must change (else the transaction fails, `WriteGuardError`). */
  expectRows?: number | undefined;
}

type Outcome = 'committed' | 'rolled back';

/**
 * A transaction whose hot-path statements are written as a script: writes whose results nobody reads and reads
 * answered at the commit ({@link write}, {@link readAtCommit}) are held, and the commit runs the whole transaction
 * at once, without a knex transaction (whose set-up costs ~0.3 ms of CPU, more than the round trip it wraps,
 * docs/store.md §6): on MySQL/MariaDB as ONE query, `BEGIN;…;COMMIT`, on SQLite as one synchronous transaction
 * (`scriptRunners.ts`). Anything else asks for the knex transaction ({@link knex}): it begins then, the held
 * statements go first (on MySQL with its next statement, `mysqlStatementFolding.ts`), and the rest runs through
 * knex as before. On PostgreSQL it is a knex transaction from the first statement.
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

  /** Whether the statements are held for a script (MySQL/MariaDB, SQLite), not sent through knex at once. */
  get #scripts(): boolean {
    return this.#dialect !== 'postgres';
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
   * its next statement); its failure fails the commit. `expectRows`: the number of rows it must change; another
   * count fails the transaction as an optimistic conflict (`causedByOptimisticConflict`).
   */
  async write(statement: Statement, options: { expectRows?: number } = {}): Promise<void> {
    this.#checkOpen();
    const held: Held = { statement, expectRows: options.expectRows };
    if (!this.#trx && this.#scripts) this.#held.push(held);
    else await this.#writeOnKnex(await this.knex(), held);
  }

  /**
   * Adds a read answered with the commit, e.g. of the rows the script's writes locked: its rows come once the
   * transaction has committed, so the caller must not await them before {@link commit}. Fails if the commit does.
   * On dialects without scripts it is read at once.
   */
  readAtCommit<T>(statement: Statement): Promise<T[]> {
    this.#checkOpen();
    if (!this.#trx && this.#scripts) {
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
    this.#trx ??= this.#begin();
    return this.#trx;
  }

  /** Begins the knex transaction and sends the held statements; if one fails, rolls it back (none stays open). */
  async #begin(): Promise<Knex.Transaction> {
    const held = this.#held;
    this.#held = [];
    let trx: Knex.Transaction;
    try {
      trx = await this.#db.transaction();
    } catch (err) {
      for (const h of held) h.read?.reject(err);
      throw toDataAccessError(err, 'begin transaction');
    }
    for (let i = 0; i < held.length; i++) {
      const h = held[i]!;
      try {
        if (h.read) this.#handedOver.push(this.#readOnKnex(trx, h));
        else await this.#writeOnKnex(trx, h);
      } catch (err) {
        // E.g. SQLite's write guard: the transaction cannot go on; the reads not sent yet fail with it.
        for (const rest of held.slice(i + 1)) rest.read?.reject(err);
        await trx.rollback().catch(() => undefined);
        throw err;
      }
    }
    return trx;
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
      this.#outcome = 'rolled back';
      throw err;
    } finally {
      this.#settle(failed ? 'rolled back' : 'committed');
    }
  }

  async #commit(): Promise<void> {
    if (this.#trx) {
      const trx = await this.#trx;
      await Promise.all(this.#handedOver);
      // Not `undefined`: the Mats outbox publishes a joined initiation's rows at once only when it can tell a
      // commit from a rollback (`OutboxPublisher.afterCallerCommit`).
      await commitOrThrow(trx, 'commit', 'committed');
      return;
    }
    const held = this.#held;
    this.#held = [];
    if (held.length === 0) return;
    let results: unknown[];
    try {
      const steps = held.map((h) => ({ statement: h.statement, read: !!h.read, expectRows: h.expectRows }));
      results = await runScript(this.#db, this.#dialect as 'mysql' | 'sqlite', steps);
    } catch (err) {
      for (const h of held) h.read?.reject(err);
      throw err;
    }
    held.forEach((h, i) => h.read?.resolve(results[i]));
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

  /** A write on the knex transaction: on MySQL write-behind (with its guard); elsewhere checked at once. */
  async #writeOnKnex(trx: Knex.Transaction, h: Held): Promise<void> {
    const raw = trx.raw(h.statement.sql, h.statement.bindings);
    if (this.#dialect === 'mysql') {
      await writeBehind(raw);
      if (h.expectRows === undefined) return;
      const guard = rowCountGuard(h.expectRows);
      await writeBehind(trx.raw(guard.sql, guard.bindings));
      return;
    }
    const result: unknown = await raw;
    if (h.expectRows === undefined) return;
    // better-sqlite3 reports a write's { changes }, pg its { rowCount }.
    const r = result as { changes?: number; rowCount?: number };
    const changed = r.changes ?? r.rowCount ?? -1;
    if (changed !== h.expectRows) throw new WriteGuardError(h.expectRows, changed);
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
