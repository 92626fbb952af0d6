import type { Knex } from 'knex';
import { toDataAccessError } from '../store/sqlErrors.ts';
import { commitOrThrow } from '../store/transactions.ts';
import { MatsIllegalCallError } from './MatsErrors.ts';

/**
 * A database transaction that begins only when first asked for (`get()`), so a stage or initiation that never
 * touches the database costs no round trip. `commit()`/`rollback()` are no-ops when it never began.
 */
export class LazyTransaction {
  readonly #db: Knex | undefined;
  #starting: Promise<Knex.Transaction> | undefined;
  #trx: Knex.Transaction | undefined;
  #done = false;

  constructor(db: Knex | undefined) {
    this.#db = db;
  }

  /** True once `get()` was called. */
  get started(): boolean {
    return this.#starting !== undefined;
  }

  /** The transaction, begun on the first call. Throws {@link MatsIllegalCallError} without a db. */
  get(): Promise<Knex.Transaction> {
    if (this.#done) return Promise.reject(new MatsIllegalCallError('The transaction has already completed'));
    if (!this.#db) {
      return Promise.reject(new MatsIllegalCallError('No database: give the MatsFactory a db to use sql()'));
    }
    this.#starting ??= this.#db.transaction().then(
      (trx) => (this.#trx = trx),
      (err: unknown) => {
        throw toDataAccessError(err, 'begin transaction');
      },
    );
    return this.#starting;
  }

  /** True if `trx` is this transaction or a savepoint inside it. */
  contains(trx: Knex.Transaction): boolean {
    if (!this.#trx) return false;
    let t: (Knex.Transaction & { parentTransaction?: Knex.Transaction }) | undefined = trx;
    while (t) {
      if (t === this.#trx) return true;
      t = t.parentTransaction;
    }
    return false;
  }

  /** Commits if it began. Throws `DataAccessError` when the commit fails (the transaction is then rolled back). */
  async commit(): Promise<void> {
    this.#done = true;
    if (!this.#starting) return;
    const trx = await this.#starting;
    if (trx.isCompleted()) return;
    await commitOrThrow(trx);
  }

  /** Rolls back if it began and is still open; never throws (a failed rollback leaves nothing committed). */
  async rollback(): Promise<void> {
    this.#done = true;
    if (!this.#starting) return;
    const trx = await this.#starting.catch(() => undefined);
    if (!trx || trx.isCompleted()) return;
    await trx.rollback().catch(() => undefined);
  }
}
