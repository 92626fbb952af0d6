import type { Knex } from 'knex';
import type { ClusterStoreAndForward } from '../../store/ClusterStoreAndForward.ts';
import type { InboxInsertOutcome, OutboxMessageInput } from '../../store/storeTypes.ts';
import { commitOrThrow } from '../../store/transactions.ts';
import { TransactionScript } from '../../store/TransactionScript.ts';
import type { OutEnvelope } from '../connection/OutgoingQueue.ts';
import type { PreparedPublish, TopicHub } from '../topics/TopicHub.ts';
import { BatchWithFallback, type AfterCommitResults } from '../messaging/BatchWithFallback.ts';
import type { CommittedEffects } from '../messaging/CommittedEffects.ts';
import { GroupCommitter } from '../messaging/GroupCommitter.ts';
import type { CollectedPublish } from '../messaging/HandlerScope.ts';
import type { OutboxWriter } from '../messaging/OutboxWriter.ts';
import type { ForwardContext, ForwardInitiator } from './ForwardInitiator.ts';
import type { CollectedForward } from './IncomingContextImpl.ts';
import { errorDescription, isInfrastructureError } from './ReplyTerminatorInvoker.ts';

/** One handled client SEND/REQUEST, ready to commit: its inbox row, effects, and stored answer (non-ACK). */
export interface IncomingItem {
  sessionId: string;
  cmid: string;
  forwards: CollectedForward[];
  forwardContext: ForwardContext;
  outbox: OutboxMessageInput[];
  publishes: CollectedPublish[];
  /** The answer to store in the inbox row (NACK, insta RESOLVE/REJECT); undefined for ACK. */
  answer: OutEnvelope | undefined;
}

export type CommitResult =
  | ({ kind: 'stored'; answer: OutEnvelope | undefined } & CommittedEffects)
  | { kind: 'duplicate' }
  | { kind: 'gone' }
  | { kind: 'retry'; desc: string };

/**
 * Commits handled client messages (docs/protocol.md 8.5 steps 1-5) in one transaction per batch, gathered across all
 * sessions by a {@link GroupCommitter}: per item the inbox insert (a duplicate discards the item's effects), its
 * forwards as Mats initiations joined to the transaction, its `server.send/request` outbox rows, topic log rows,
 * and the stored answer. A failed batch is retried item by item, so one bad item cannot fail the others; an item
 * failing on an application error (e.g. an illegal forward target) is committed as a NACK instead.
 */
export class IncomingCommitter {
  readonly #store: ClusterStoreAndForward;
  readonly #forwards: ForwardInitiator;
  readonly #outbox: OutboxWriter;
  readonly #topics: TopicHub;
  readonly #batches: BatchWithFallback<IncomingItem, CommitResult>;
  readonly #group: GroupCommitter<IncomingItem, CommitResult>;

  constructor(
    store: ClusterStoreAndForward,
    forwards: ForwardInitiator,
    outbox: OutboxWriter,
    topics: TopicHub,
    options: { windowMs: number; maxItems: number; eagerWhenIdle: boolean },
  ) {
    this.#store = store;
    this.#forwards = forwards;
    this.#outbox = outbox;
    this.#topics = topics;
    this.#batches = new BatchWithFallback({
      store,
      commitInTrx: (items, tx, optimistic) => this.#commitInTrx(items, tx, optimistic),
      operations: { batch: 'incoming group commit', single: 'incoming commit' },
      // On MySQL/MariaDB and SQLite the inbox, Mats outbox and outbox inserts are then the writes of a
      // transaction script: a forwarding batch in one round trip (one synchronous transaction on SQLite), without
      // a knex transaction (docs/store.md §6). A duplicate or a session closed meanwhile (rare here: the processor
      // checks a possible copy first) fails the batch, whose items are then committed one by one.
      optimistic: store.dialect !== 'postgres',
      onItemFailure: (item, err) => this.#afterFailure(item, err),
    });
    this.#group = new GroupCommitter({ ...options, commit: (items) => this.#batches.commit(items) });
  }

  /** Commits with others (group commit). */
  commit(item: IncomingItem): Promise<CommitResult> {
    return this.#group.submit(item);
  }

  /** Commits in the handler's own transaction (it used `getSql()`), then commits or rolls it back. */
  async commitInOwnTransaction(item: IncomingItem, trx: Knex.Transaction): Promise<CommitResult> {
    try {
      // Not optimistic: the results are there before the commit.
      const joined = TransactionScript.joining(trx, this.#store.dialect);
      const [result] = (await this.#commitInTrx([item], joined)) as CommitResult[];
      if (result!.kind === 'stored') await commitOrThrow(trx, 'incoming commit');
      else await trx.rollback();
      return result!;
    } catch (err) {
      if (!trx.isCompleted()) await trx.rollback().catch(() => undefined);
      return this.#afterFailure(item, err);
    }
  }

  /** Infrastructure failure → RETRY; application failure → commit the item as a NACK. */
  async #afterFailure(item: IncomingItem, err: unknown): Promise<CommitResult> {
    if (isInfrastructureError(err) || item.answer?.t === 'NACK') {
      return { kind: 'retry', desc: `Could not process the message now: ${errorDescription(err)}` };
    }
    const nack: IncomingItem = {
      ...item,
      forwards: [],
      outbox: [],
      publishes: [],
      answer: { t: 'NACK', cmid: item.cmid, desc: errorDescription(err) },
    };
    return this.#batches.commitAlone(nack);
  }

  async #commitInTrx(
    items: IncomingItem[],
    tx: TransactionScript,
    optimistic = false,
  ): Promise<CommitResult[] | AfterCommitResults<CommitResult>> {
    const refs = items.map((i) => ({ sessionId: i.sessionId, cmid: i.cmid }));
    // On MySQL/MariaDB and SQLite the inbox rows can be written without reading the session locks first: when
    // the transaction commits, every item was stored (docs/store.md §6); else the fallback sorts them out.
    const outcomes: InboxInsertOutcome[] =
      optimistic && (await this.#store.storeMessageIdsInInboxAtCommit(refs, tx))
        ? refs.map(() => 'STORED')
        : await this.#store.storeMessageIdsInInbox(refs, await tx.knex(), { writeBehind: optimistic });
    const results: CommitResult[] = [];
    const outbox: OutboxMessageInput[] = [];
    const owners: number[] = [];
    const forwards: { forwards: IncomingItem['forwards']; context: IncomingItem['forwardContext'] }[] = [];
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      const outcome = outcomes[i];
      if (outcome === 'DUPLICATE') {
        results.push({ kind: 'duplicate' });
        continue;
      }
      if (outcome === 'SESSION_GONE') {
        results.push({ kind: 'gone' });
        continue;
      }
      if (item.forwards.length > 0) forwards.push({ forwards: item.forwards, context: item.forwardContext });
      for (const m of item.outbox) {
        outbox.push(m);
        owners.push(i);
      }
      const publishes: PreparedPublish[] = [];
      for (const p of item.publishes) publishes.push(await this.#topics.prepare(p, await tx.knex()));
      if (item.answer) {
        await this.#store.updateMessageInInbox(
          item.sessionId,
          item.cmid,
          JSON.stringify(item.answer),
          null,
          await tx.knex(),
        );
      }
      results.push({ kind: 'stored', answer: item.answer, registrations: [], publishes });
    }
    await this.#forwards.initiate(forwards, tx);
    return this.#outbox.storeThen(outbox, tx, optimistic, (stored) => {
      stored.forEach((r, j) => {
        const result = results[owners[j]!];
        if (result?.kind === 'stored') result.registrations.push(r.currentNode);
      });
      return results;
    });
  }
}
