import type { MatsEndpoint } from '../../mats/MatsEndpoint.ts';
import type { MatsFactory } from '../../mats/MatsFactory.ts';
import type { StageContext } from '../../mats/StageContext.ts';
import { replyDebugInfo } from '../../protocol/debugOptions.ts';
import { ErrorCode, MatsSocketServerError } from '../../errors.ts';
import { MatsMessageStore } from '../../store/MatsMessageStore.ts';
import type { TransactionScript } from '../../store/TransactionScript.ts';
import type {
  OutboxMessageInput,
  StoreInOutboxBatchResult,
  StoredOutMessage,
} from '../../store/storeTypes.ts';
import type { ServerCore } from '../ServerCore.ts';
import type { PreparedPublish, TopicHub } from '../topics/TopicHub.ts';
import {
  IncomingDescriptions,
  type MatsSocketEndpointDefinition,
  type ReplyAdapterContext,
} from '../messaging/EndpointTypes.ts';
import type { AfterCommit } from '../messaging/AfterCommit.ts';
import { BatchWithFallback, type AfterCommitResults } from '../messaging/BatchWithFallback.ts';
import type { AttemptedRows, CommittedEffects } from '../messaging/CommittedEffects.ts';
import { eagerWhenIdleOn, GroupCommitter } from '../messaging/GroupCommitter.ts';
import { HandlerScope, runInHandlerScope, type CollectedPublish } from '../messaging/HandlerScope.ts';
import { newSmid, type OutboxWriter } from '../messaging/OutboxWriter.ts';
import type { ReplyState } from '../messaging/ReplyState.ts';

interface ReplyItem {
  matsMessageId: string;
  outbox: OutboxMessageInput[];
  publishes: CollectedPublish[];
}

/** A committed reply, a duplicate, or (after its batch failed) a reply whose own transaction failed too. */
type ReplyResult =
  | ({ duplicate: false; failure?: undefined } & CommittedEffects)
  | { duplicate: true; failure?: { error: unknown } };

/** Consumer priority of a node's own reply queue; the other nodes consume it at 0. */
const OWN_QUEUE_PRIORITY = 10;
/**
 * A node's own reply queue takes this many times `replyHandlerConcurrency` in flight before the overflow goes to the
 * other nodes: one reply per session with a request in flight, as many as a node's sessions have, stays here.
 */
const OWN_QUEUE_PREFETCH_FACTOR = 4;

/**
 * The row as the forwarder would read it back. Its id is not known (a multi-row INSERT returns none portably); the
 * forwarder writes in the order of the list, which is the insert order.
 */
function storedRowOf(m: OutboxMessageInput, now: number): StoredOutMessage {
  // As stored with `attemptBy`: attempted once, now.
  return {
    id: 0,
    smid: m.smid,
    cmid: m.cmid ?? null,
    traceId: m.traceId,
    type: m.type,
    requestTs: m.requestTs ?? null,
    storedTs: now,
    attemptTs: now,
    deliveryCount: 1,
    envelope: m.envelope,
    messageText: m.messageText ?? null,
    messageBinary: m.messageBinary ?? null,
  };
}

class AdapterContext implements ReplyAdapterContext {
  readonly endpointId: string;
  readonly sessionId: string;
  readonly cmid: string;
  readonly traceId: string;
  readonly resolvedDebugOptions: number;
  readonly reply: unknown;
  readonly stageContext: StageContext;
  decision: { t: 'RESOLVE' | 'REJECT'; message: unknown } | undefined;
  closed = false;

  constructor(state: ReplyState, reply: unknown, stageContext: StageContext) {
    this.endpointId = state.eid;
    this.sessionId = state.sid;
    this.cmid = state.cmid;
    this.traceId = state.tid;
    this.resolvedDebugOptions = state.rd;
    this.reply = reply;
    this.stageContext = stageContext;
  }

  get log(): StageContext['log'] {
    return this.stageContext.log;
  }

  #decide(t: 'RESOLVE' | 'REJECT', message: unknown): void {
    if (this.closed || this.decision) {
      throw new MatsSocketServerError(
        ErrorCode.SERVER_ILLEGAL_CALL,
        'The reply adapter may decide once, while it runs',
      );
    }
    this.decision = { t, message };
  }

  resolve(reply: unknown): void {
    this.#decide('RESOLVE', reply);
  }

  reject(reply: unknown): void {
    this.#decide('REJECT', reply);
  }
}

/**
 * The reply handler (docs/protocol.md 8.6 step 4): the terminator `MatsSocket.<inst>.replyHandler` on a queue shared by
 * all nodes. It runs the endpoint's reply adapter, then hands the reply to a group committer that, in one
 * transaction for many replies, de-duplicates by matsMessageId (`mats_inbox`, which outlives the client's ACK)
 * and stores the outbox rows. The stage returns only after that commit, so the broker ack follows it; then the
 * holding nodes are poked. A reply for a session that is gone is dropped by the store.
 */
export class ReplyHandler {
  readonly endpointId: string;
  readonly #core: ServerCore;
  readonly #factory: MatsFactory;
  readonly #endpoints: ReadonlyMap<string, MatsSocketEndpointDefinition>;
  readonly #outbox: OutboxWriter;
  readonly #topics: TopicHub;
  readonly #afterCommit: AfterCommit;
  readonly #matsStore: MatsMessageStore;
  readonly #committer: GroupCommitter<ReplyItem, ReplyResult>;

  constructor(
    core: ServerCore,
    factory: MatsFactory,
    endpoints: ReadonlyMap<string, MatsSocketEndpointDefinition>,
    outbox: OutboxWriter,
    topics: TopicHub,
    afterCommit: AfterCommit,
  ) {
    this.endpointId = `MatsSocket.${core.options.instanceName}.replyHandler`;
    this.#core = core;
    this.#factory = factory;
    this.#endpoints = endpoints;
    this.#outbox = outbox;
    this.#topics = topics;
    this.#afterCommit = afterCommit;
    this.#matsStore = new MatsMessageStore(core.store.knex);
    const t = core.options.timings;
    // No onItemFailure: a reply that fails alone rejects its whole batch (the stages throw, the broker redelivers;
    // replies of the batch already committed are then duplicates by matsMessageId).
    const batches = new BatchWithFallback<ReplyItem, ReplyResult>({
      store: core.store,
      commitInTrx: (items, tx, optimistic) => this.#commitInTrx(items, tx, optimistic),
      operations: { batch: 'reply group commit', single: 'reply commit' },
      // On MySQL/MariaDB and SQLite the inbox and outbox inserts are then the writes of a transaction script: a
      // reply batch in one round trip (one synchronous transaction on SQLite), without a knex transaction
      // (docs/store.md §6). A redelivered reply fails the batch, whose items are then committed one by one,
      // de-duplicated row by row.
      optimistic: core.store.dialect !== 'postgres',
      // A reply that fails in its own transaction fails alone: the others of its batch did commit and must get
      // their after-commit step (a reply stored as attempted is written by nothing else).
      onItemFailure: (_item, error) => Promise.resolve({ duplicate: true, failure: { error } }),
    });
    this.#committer = new GroupCommitter({
      windowMs: t.groupCommitWindowMs,
      maxItems: t.groupCommitMaxItems,
      eagerWhenIdle: eagerWhenIdleOn(core.store.dialect),
      commit: (items) => batches.commit(items),
    });
  }

  /** The endpoint id of node reply queue `index` (docs/protocol.md 8.6). */
  nodeQueueId(index: number): string {
    return `${this.endpointId}.${index}`;
  }

  /**
   * Registers the terminators: the shared queue, and every node reply queue — `own` (this node's) at high priority
   * with room for a node's worth of replies in flight, the others at low priority, so that they take over the
   * replies of a node that is gone (or whose own consumer is full).
   */
  register(own: number | undefined): MatsEndpoint<never, ReplyState>[] {
    const concurrency = this.#core.options.replyHandlerConcurrency;
    const options = { concurrency, interactiveConcurrency: concurrency, inbox: false, outbox: false };
    const onReply = (ctx: StageContext, state: ReplyState, reply: unknown): Promise<void> =>
      this.#onReply(ctx, state, reply);
    const endpoints = [this.#factory.terminator<ReplyState, unknown>(this.endpointId, onReply, options)];
    for (let i = 0; i < this.#core.options.nodeReplyQueues; i++) {
      const mine = i === own;
      endpoints.push(
        this.#factory.terminator<ReplyState, unknown>(this.nodeQueueId(i), onReply, {
          ...options,
          interactiveConcurrency: mine ? OWN_QUEUE_PREFETCH_FACTOR * concurrency : concurrency,
          priority: mine ? OWN_QUEUE_PRIORITY : 0,
        }),
      );
    }
    return endpoints;
  }

  async #onReply(stage: StageContext, state: ReplyState, reply: unknown): Promise<void> {
    const core = this.#core;
    const endpoint = this.#endpoints.get(state.eid);
    const scope = new HandlerScope();
    let t: 'RESOLVE' | 'REJECT' = 'RESOLVE';
    let message: unknown = reply;
    let desc: string | undefined;
    if (endpoint?.replyAdapter) {
      const ctx = new AdapterContext(state, reply, stage);
      try {
        await runInHandlerScope(scope, () => endpoint.replyAdapter!(ctx));
        if (ctx.decision) ({ t, message } = ctx.decision);
        else {
          t = 'REJECT';
          message = undefined;
          desc = IncomingDescriptions.adapterUndecided;
        }
      } catch (err) {
        t = 'REJECT';
        message = undefined;
        desc = err instanceof Error ? err.message : String(err);
      } finally {
        ctx.closed = true;
        scope.close();
      }
    }
    const now = core.now();
    const debug = replyDebugInfo(state.rd, {
      cmrts: state.cmrts,
      cmrnn: state.cmrnn,
      mmsts: state.mmsts,
      mmrrts: now,
      mmrrnn: core.options.nodeName,
    });
    const envelope = {
      t,
      cmid: state.cmid,
      tid: state.tid,
      ...(desc !== undefined ? { desc } : {}),
      ...(debug ? { debug } : {}),
    };
    const input: OutboxMessageInput = {
      sessionId: state.sid,
      smid: newSmid(),
      cmid: state.cmid,
      traceId: state.tid,
      type: t,
      requestTs: state.cmrts,
      envelope: JSON.stringify(envelope),
      messageText: message === undefined ? null : JSON.stringify(message),
    };
    // The reply to a session held here goes out from memory right after the commit (the store checks the
    // registration under the session lock); one waiting for re-authentication goes the fetched way.
    const conn = core.registry.get(state.sid);
    if (conn?.established && !conn.auth.outgoingHeld) input.attemptBy = conn.connectionId;
    const result = await this.#committer.submit({
      matsMessageId: stage.matsMessageId,
      outbox: [input, ...scope.outbox],
      publishes: scope.publishes,
    });
    if (result.failure) throw result.failure.error;
    if (!result.duplicate) {
      core.metrics.replyStored(conn?.established === true);
      this.#afterCommit.run(result);
    } else if (input.attemptBy !== undefined) await this.#afterCommit.recoverAttempted(state.sid);
  }

  async #commitInTrx(
    items: ReplyItem[],
    tx: TransactionScript,
    optimistic: boolean,
  ): Promise<ReplyResult[] | AfterCommitResults<ReplyResult>> {
    const now = this.#core.now();
    const results: ReplyResult[] = [];
    const outbox: OutboxMessageInput[] = [];
    const owners: number[] = [];
    const fresh = await this.#matsStore.insertInboxBatch(
      tx,
      this.endpointId,
      items.map((i) => i.matsMessageId),
      now,
      optimistic,
    );
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      if (!fresh[i]) {
        results.push({ duplicate: true });
        continue;
      }
      const publishes: PreparedPublish[] = [];
      for (const p of item.publishes) publishes.push(await this.#topics.prepare(p, await tx.knex()));
      results.push({ duplicate: false, registrations: [], publishes });
      for (const m of item.outbox) {
        outbox.push(m);
        owners.push(i);
      }
    }
    // On MySQL/MariaDB and SQLite the outbox writes lock the sessions themselves and the batch is one script (one
    // round trip, docs/store.md §6); the registrations are then known after the commit.
    return this.#outbox.storeThen(outbox, tx, optimistic, (stored) =>
      withStored(results, outbox, owners, stored, now),
    );
  }
}

/** The items' results completed with their outbox messages' outcomes (`owners[j]`: the item of message `j`). */
function withStored(
  results: ReplyResult[],
  outbox: readonly OutboxMessageInput[],
  owners: readonly number[],
  stored: readonly StoreInOutboxBatchResult[],
  now: number,
): ReplyResult[] {
  const attempted = new Map<ReplyResult, Map<string, AttemptedRows>>();
  stored.forEach((r, j) => {
    const result = results[owners[j]!];
    if (!result || result.duplicate) return;
    const m = outbox[j]!;
    if (!r.attempted || m.attemptBy === undefined) {
      result.registrations.push(r.currentNode);
      return;
    }
    let bySession = attempted.get(result);
    if (!bySession) attempted.set(result, (bySession = new Map<string, AttemptedRows>()));
    let written = bySession.get(m.sessionId);
    if (!written) bySession.set(m.sessionId, (written = { connectionId: m.attemptBy, rows: [] }));
    written.rows.push(storedRowOf(m, now));
  });
  for (const [result, bySession] of attempted) if (!result.duplicate) result.attempted = bySession;
  return results;
}
