import type { Knex } from 'knex';
import { DataAccessError } from '../../errors.ts';
import type { ClusterStoreAndForward } from '../../store/ClusterStoreAndForward.ts';
import type { TransactionScript } from '../../store/TransactionScript.ts';
import type {
  OutboxMessageInput,
  StoreInOutboxBatchResult,
  BatchWriteOptions,
} from '../../store/storeTypes.ts';
import { randomId } from '../../util/ids.ts';

/** Length of outbox smids (docs/protocol.md section 13: 12 random alphanumerics). */
export const SMID_LENGTH = 12;

export function newSmid(): string {
  return randomId(SMID_LENGTH);
}

/**
 * Stores server-to-client messages in session outboxes inside a caller's transaction, choosing a new smid for any
 * message whose smid is already in use in its session (at most `maxSmidAttempts` rounds). Envelopes are stored
 * without `smid` (and without `msg`): the forwarder adds the row's smid when it writes the frame, so a new smid
 * never means rewriting the envelope.
 */
export class OutboxWriter {
  readonly #store: ClusterStoreAndForward;
  readonly #maxSmidAttempts: number;

  constructor(store: ClusterStoreAndForward, maxSmidAttempts: number) {
    this.#store = store;
    this.#maxSmidAttempts = maxSmidAttempts;
  }

  /**
   * {@link store}, then `finish` with the outcomes. `optimistic` (a group commit's first attempt): the writes are
   * writes of the script where the store can (`storeMessagesInOutboxAtCommit`: MySQL/MariaDB, SQLite), and the
   * outcomes are known only after the commit: then the result is a function giving `finish`'s result, to call once
   * the transaction has committed (`BatchWithFallback`'s `AfterCommitResults`); else write-behind.
   */
  async storeThen<T>(
    messages: OutboxMessageInput[],
    tx: TransactionScript,
    optimistic: boolean,
    finish: (stored: readonly StoreInOutboxBatchResult[]) => T,
  ): Promise<T | (() => Promise<T>)> {
    if (messages.length === 0) return finish([]);
    if (optimistic) {
      const atCommit = await this.#store.storeMessagesInOutboxAtCommit(messages, tx);
      if (atCommit) return async () => finish(await atCommit.results);
    }
    return finish(await this.store(messages, await tx.knex(), { writeBehind: optimistic }));
  }

  /** `options.writeBehind`: see {@link BatchWriteOptions}. */
  async store(
    messages: OutboxMessageInput[],
    trx: Knex.Transaction,
    options?: BatchWriteOptions,
  ): Promise<StoreInOutboxBatchResult[]> {
    if (messages.length === 0) return [];
    const results = await this.#store.storeMessagesInOutbox(messages, trx, options);
    let retry = results.map((r, i) => (r.smidInUse ? i : -1)).filter((i) => i >= 0);
    for (let attempt = 2; retry.length > 0; attempt++) {
      if (attempt > this.#maxSmidAttempts) {
        throw new DataAccessError(`No free smid found after ${this.#maxSmidAttempts} attempts`);
      }
      for (const i of retry) messages[i]!.smid = newSmid();
      const again = await this.#store.storeMessagesInOutbox(
        retry.map((i) => messages[i]!),
        trx,
      );
      again.forEach((r, j) => (results[retry[j]!] = r));
      retry = retry.filter((_, j) => again[j]!.smidInUse);
    }
    return results;
  }
}
