import type { ClusterStoreAndForward } from '../../store/ClusterStoreAndForward.ts';
import { causedByOptimisticConflict } from '../../store/sqlErrors.ts';
import type { TransactionScript } from '../../store/TransactionScript.ts';

/** Results known once the transaction has committed. */
export type AfterCommitResults<R> = () => Promise<R[]>;

/** What {@link BatchWithFallback} commits, and how. */
export interface BatchWithFallbackOptions<I, R> {
  store: Pick<ClusterStoreAndForward, 'script'>;
  /**
   * Writes `items` in `tx` (a knex transaction only where a write needs one: `tx.knex()`); returns one result per
   * item, in order. `optimistic`: the first attempt of a batch,
   * when `optimistic` is set below; the writes may then assume no duplicates (their failure fails the transaction,
   * and the items are committed again, not optimistic), and the results may be known only after the commit: then
   * it returns a function giving them, called once the transaction has committed (reads that travel with the
   * COMMIT, `docs/store.md` §6).
   */
  commitInTrx(items: I[], tx: TransactionScript, optimistic: boolean): Promise<R[] | AfterCommitResults<R>>;
  /**
   * Try each batch optimistically first (e.g. inserts that travel with the COMMIT instead of on their own round
   * trips, which cannot report a duplicate row by row): when that transaction fails on a unique violation or a
   * write guard (`causedByOptimisticConflict`), even a batch of one item is committed again, not optimistic (any
   * other failure of one item is its own). @default false
   */
  optimistic?: boolean;
  /** The store's operation names of the transactions: a whole batch, and one item alone. */
  operations: { batch: string; single: string };
  /**
   * The result of an item whose own transaction failed (for a batch of one: the batch's). Default: rethrow, which
   * rejects the whole batch.
   */
  onItemFailure?(item: I, err: unknown): Promise<R>;
}

/**
 * Commits a batch gathered across sessions (a `GroupCommitter`'s) in one transaction; if that fails and the batch
 * has more than one item, commits each item in its own transaction, one after the other, so that one bad item
 * (a constraint violation, a deadlock victim) does not fail the others. Used by both directions: the incoming
 * commit of client messages and the reply handler's commit of backend replies.
 */
export class BatchWithFallback<I, R> {
  readonly #o: BatchWithFallbackOptions<I, R>;

  constructor(options: BatchWithFallbackOptions<I, R>) {
    this.#o = options;
  }

  /** Commits `items` together, else item by item. */
  async commit(items: I[]): Promise<R[]> {
    const o = this.#o;
    const optimistic = o.optimistic ?? false;
    let committed: R[] | AfterCommitResults<R>;
    try {
      committed = await o.store.script((tx) => o.commitInTrx(items, tx, optimistic), o.operations.batch);
    } catch (err) {
      if (items.length === 1 && !(optimistic && causedByOptimisticConflict(err))) {
        return [await this.#failed(items[0]!, err)];
      }
      const results: R[] = [];
      for (const item of items) results.push(await this.commitAlone(item));
      return results;
    }
    // Outside the try: the items are committed, whatever reading their results does.
    return typeof committed === 'function' ? committed() : committed;
  }

  /** Commits one item in its own transaction. */
  async commitAlone(item: I): Promise<R> {
    const o = this.#o;
    try {
      const committed = await o.store.script((tx) => o.commitInTrx([item], tx, false), o.operations.single);
      const [result] = typeof committed === 'function' ? await committed() : committed;
      return result!;
    } catch (err) {
      return this.#failed(item, err);
    }
  }

  #failed(item: I, err: unknown): Promise<R> {
    if (this.#o.onItemFailure) return this.#o.onItemFailure(item, err);
    throw err;
  }
}
