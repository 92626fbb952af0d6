import { isAuthenticationResult } from '../connection/ConnectionAuthState.ts';
import type { MatsSocketConnection } from '../connection/MatsSocketConnection.ts';
import type { OutEnvelope } from '../connection/OutgoingQueue.ts';
import { serverInitiatedDebugAtWrite, stampDebugAtWrite } from '../../protocol/debugOptions.ts';
import { markInitiated } from '../connection/initiationOf.ts';
import type { DebugInfo } from '../../protocol/envelopes.ts';
import { encodeFrame, RawJson } from '../../protocol/encodeFrame.ts';
import type { DeadLetterReason, StoredOutMessage } from '../../store/storeTypes.ts';
import type { AttemptedRows } from '../messaging/CommittedEffects.ts';
import { GroupCommitter } from '../messaging/GroupCommitter.ts';
import {
  retryWhileDatabaseUnavailable,
  serverOutageRetry,
} from '../messaging/retryWhileDatabaseUnavailable.ts';
import type { ServerCore } from '../ServerCore.ts';
import { framesInStoredOrder, type FrameItem } from './framesInStoredOrder.ts';

/** Fetched rows written to one connection, to mark attempted by row id (`outboxRowsAttemptedDelivery`). */
interface MarkItem {
  sessionId: string;
  rowIds: number[];
  connectionId: string;
}

interface LoopState {
  /** A fetch round is due (a poke, or a full batch was fetched). */
  again: boolean;
  /** Rows stored already attempted by a connection of this node, to write from memory (see `writeAttempted`). */
  attempted: AttemptedRows[];
  /** Rows read for the session moments ago (the resume's transaction): the first round uses them, no fetch. */
  prefetched: StoredOutMessage[] | undefined;
  /** The loop waits for its rows' attempt mark; a poke meanwhile commits the mark batch early. */
  marking: boolean;
  promise: Promise<void>;
}

/**
 * Delivers session outboxes to the connections of this node (docs/protocol.md 9.2, BR-2): one loop per session at a
 * time; each round fetches up to 20 unattempted rows in stored order, checks outgoing authorization (REAUTH and
 * hold), dead-letters rows at the delivery limit or undeliverable, writes the rows in stored order (runs of fresh
 * rows in one frame, already attempted rows one per frame), then marks them attempted (batched across sessions). Rounds repeat while a full
 * batch was fetched or a poke arrived meanwhile.
 */
export class Forwarder {
  readonly #core: ServerCore;
  readonly #loops = new Map<string, LoopState>();
  readonly #marker: GroupCommitter<MarkItem, void>;
  readonly #fetcher: GroupCommitter<string, StoredOutMessage[]>;

  constructor(core: ServerCore) {
    this.#core = core;
    const t = core.options.timings;
    // A database restart pauses forwarding instead of failing the rounds (which would leave the sessions' messages
    // to the next poke or the self-heal sweep).
    const retry = serverOutageRetry(core, 'forwarding waits');
    this.#marker = new GroupCommitter<MarkItem, void>({
      windowMs: t.storeBatchWindowMs,
      maxItems: 500,
      commit: async (items) => {
        await retryWhileDatabaseUnavailable(() => this.#markAttempted(items), retry);
        return items.map(() => undefined);
      },
    });
    // Fetches of the rounds starting in the same event-loop turn (a reconnect storm, a burst of replies) go in one
    // statement; while one is running, more gather for the next.
    const max = core.options.limits.maxMessagesPerForwardRound;
    this.#fetcher = new GroupCommitter<string, StoredOutMessage[]>({
      windowMs: 0,
      maxItems: 200,
      commit: (sessionIds) =>
        retryWhileDatabaseUnavailable(async () => {
          if (sessionIds.length === 1) return [await core.store.getMessagesFromOutbox(sessionIds[0]!, max)];
          const bySession = await core.store.getMessagesFromOutboxBatch(sessionIds, max);
          return sessionIds.map((id) => bySession.get(id) ?? []);
        }, retry),
    });
  }

  /**
   * Marks written rows attempted, but only for sessions still registered to this node and the writing connection:
   * a resume elsewhere (or a local takeover) unmarks all rows, and a late mark of the old connection must not
   * undo that. Under the session's share lock, so a concurrent resume either waits for this mark (and then unmarks
   * it) or has already moved the registration (and the mark is skipped).
   */
  async #markAttempted(items: MarkItem[]): Promise<void> {
    const store = this.#core.store;
    const node = this.#core.options.nodeName;
    const sorted = [...items].sort((a, b) =>
      a.sessionId < b.sessionId ? -1 : a.sessionId > b.sessionId ? 1 : 0,
    );
    await store.transaction(async (trx) => {
      // One locking read for all sessions of the batch (sorted ids: the same lock order as other batch lockers).
      const states = await store.lockSessionsForShare(
        sorted.map((i) => i.sessionId),
        trx,
      );
      const still: number[] = [];
      for (const item of sorted) {
        const state = states.get(item.sessionId);
        if (state?.nodename === node && state.connectionId === item.connectionId) still.push(...item.rowIds);
      }
      if (still.length > 0) await store.outboxRowsAttemptedDelivery(still, trx);
    }, 'mark outbox messages attempted');
  }

  /** Sessions with a forward loop running. */
  get running(): number {
    return this.#loops.size;
  }

  isRunning(sessionId: string): boolean {
    return this.#loops.has(sessionId);
  }

  /** Runs the session's forward loop, or has the running one go round again; `outbox`: see {@link LoopState}. */
  poke(sessionId: string, outbox?: StoredOutMessage[]): void {
    const existing = this.#loops.get(sessionId);
    if (existing) {
      existing.again = true;
      if (existing.marking) this.#marker.flushIfIdle();
      return;
    }
    this.#start(sessionId, { again: true, attempted: [], prefetched: outbox });
  }

  /**
   * Writes rows that a commit stored already attempted by `written.connectionId` (a reply to a session held here:
   * no fetch, no attempt mark), in the session's loop so that its writes stay one at a time. If that connection is
   * no longer the session's, the rows stay attempted and the session's next resume unmarks them (docs/protocol.md
   * §9.2).
   */
  writeAttempted(sessionId: string, written: AttemptedRows): void {
    const existing = this.#loops.get(sessionId);
    if (existing) existing.attempted.push(written);
    else this.#start(sessionId, { again: false, attempted: [written], prefetched: undefined });
  }

  #start(sessionId: string, init: Pick<LoopState, 'again' | 'attempted' | 'prefetched'>): void {
    const state: LoopState = { ...init, marking: false, promise: Promise.resolve() };
    this.#loops.set(sessionId, state);
    state.promise = this.#core.track(
      this.#loop(sessionId, state)
        .catch((err: unknown) => this.#core.logger.warn({ err, sessionId }, 'forward round failed'))
        .finally(() => {
          this.#loops.delete(sessionId);
          if (!this.#core.registry.get(sessionId)?.established) return;
          if (state.attempted.length > 0) {
            this.#start(sessionId, { again: state.again, attempted: state.attempted, prefetched: undefined });
          } else if (state.again) this.poke(sessionId);
        }),
    );
  }

  idle(sessionId: string): Promise<void> {
    return this.#loops.get(sessionId)?.promise ?? Promise.resolve();
  }

  async #loop(sessionId: string, state: LoopState): Promise<void> {
    const core = this.#core;
    const max = core.options.limits.maxMessagesPerForwardRound;
    for (;;) {
      if (state.attempted.length > 0) {
        const outcome = await this.#writeAttempted(sessionId, state);
        if (outcome === 'stop') return;
        continue;
      }
      if (!state.again) return;
      state.again = false;
      const conn = core.registry.get(sessionId);
      if (!conn?.established || conn.auth.outgoingHeld) return;
      const rows = state.prefetched ?? (await this.#fetcher.submit(sessionId));
      state.prefetched = undefined;
      if (rows.length === 0) continue;
      if (core.registry.get(sessionId) !== conn || !conn.established) return;
      if (!(await this.#outgoingAuthorized(conn))) return;
      const writeFailed = await this.#round(conn, sessionId, rows, state, true);
      if (rows.length >= max) state.again = true;
      if (writeFailed) {
        state.again = true;
        await new Promise((r) => setTimeout(r, core.options.timings.forwardWriteFailurePauseMs));
        if (core.registry.get(sessionId)?.established) continue;
        return;
      }
    }
  }

  /**
   * Writes the rows stored attempted by the session's current connection; rows of a connection that is gone stay
   * attempted (its resume unmarks them). A session waiting for re-authentication gets them unmarked, so that the
   * fetch after the new AUTH finds them. `stop`: the connection is gone or held.
   */
  async #writeAttempted(sessionId: string, state: LoopState): Promise<'stop' | 'next'> {
    const core = this.#core;
    const batches = state.attempted;
    state.attempted = [];
    const conn = core.registry.get(sessionId);
    if (!conn?.established) return 'stop';
    const rows = batches.filter((b) => b.connectionId === conn.connectionId).flatMap((b) => b.rows);
    if (rows.length === 0) return 'next';
    if (conn.auth.outgoingHeld || !(await this.#outgoingAuthorized(conn))) {
      await retryWhileDatabaseUnavailable(
        () => core.store.outboxMessagesUnmarkAttemptedDelivery(sessionId),
        serverOutageRetry(core, 'unmarking held replies'),
      );
      return 'stop';
    }
    const failed = await this.#round(conn, sessionId, rows, state, false);
    if (!failed) return 'next';
    await new Promise((r) => setTimeout(r, core.options.timings.forwardWriteFailurePauseMs));
    return core.registry.get(sessionId)?.established ? 'next' : 'stop';
  }

  /** Outgoing REAUTH (8.13): not authenticated/stillValid → REAUTH once (0 ms) and hold outbox delivery. */
  async #outgoingAuthorized(conn: MatsSocketConnection): Promise<boolean> {
    const auth = conn.auth;
    const plugin = conn.plugin;
    let result: unknown;
    try {
      const value = auth.authorization ?? '';
      result = plugin.reevaluateAuthenticationForOutgoingMessage
        ? await plugin.reevaluateAuthenticationForOutgoingMessage(
            auth,
            value,
            auth.principal,
            auth.lastAuthenticatedTimestamp,
          )
        : await plugin.reevaluateAuthentication(auth, value, auth.principal);
    } catch (err) {
      conn.log.info({ err }, 'outgoing authentication re-evaluation threw: REAUTH');
      result = undefined;
    }
    if (isAuthenticationResult(result) && result.kind !== 'invalid') return true;
    if (!auth.outgoingHeld) {
      auth.outgoingHeld = true;
      conn.out.enqueue({ t: 'REAUTH' }, 0);
    }
    return false;
  }

  /** One round; returns true if a socket write failed. `mark`: the rows are fetched ones, to mark attempted. */
  async #round(
    conn: MatsSocketConnection,
    sessionId: string,
    rows: StoredOutMessage[],
    state: LoopState,
    mark: boolean,
  ): Promise<boolean> {
    const core = this.#core;
    const limits = core.options.limits;
    const limitReached = mark ? rows.filter((r) => r.deliveryCount >= limits.maxDeliveryAttempts) : [];
    if (limitReached.length > 0) {
      await this.deadLetter(
        sessionId,
        limitReached.map((r) => r.smid),
        'delivery_limit',
        `Not acknowledged after ${limits.maxDeliveryAttempts} delivery attempts`,
      );
    }
    const deliverable: FrameItem<{ envelope: OutEnvelope; smid: string; rowId: number }>[] = [];
    const undeliverable: string[] = [];
    const now = core.now();
    // Replies to client REQUESTs: when the request came in (for the round-trip histogram).
    const requestTs = new Map<string, number>();
    for (const row of rows) {
      if (mark && row.deliveryCount >= limits.maxDeliveryAttempts) continue;
      // Rows handed over from memory were serialized by this process a moment ago: no need to validate their JSON.
      const envelope = this.#envelopeOf(conn, row, now, !mark);
      if (
        !envelope ||
        (!certainlyWithinFrame(row, limits.maxFrameBytes) && frameBytes(envelope) > limits.maxFrameBytes)
      ) {
        undeliverable.push(row.smid);
        continue;
      }
      deliverable.push({
        item: { envelope, smid: row.smid, rowId: row.id },
        attempted: mark && row.deliveryCount > 0,
      });
      if (row.requestTs !== null && (row.type === 'RESOLVE' || row.type === 'REJECT'))
        requestTs.set(row.smid, row.requestTs);
    }
    if (undeliverable.length > 0) {
      await this.deadLetter(
        sessionId,
        undeliverable,
        'undeliverable',
        'Cannot be serialized or exceeds the frame limit',
      );
    }
    const frames = framesInStoredOrder(deliverable).map((f) => ({
      envelopes: f.map((r) => r.envelope),
      smids: f.map((r) => r.smid),
      rowIds: f.map((r) => r.rowId),
    }));
    let failed = false;
    const written: number[] = [];
    for (const frame of frames) {
      if (!conn.established) break;
      // A reply written first makes its REQUEST's pending ACK redundant (section 8.6 step 3).
      for (const e of frame.envelopes)
        if ((e.t === 'RESOLVE' || e.t === 'REJECT') && e.cmid) conn.out.elideAck(e.cmid);
      const ok = await conn.writeEnvelopes(frame.envelopes);
      written.push(...frame.rowIds);
      if (ok && requestTs.size > 0) {
        const writtenTs = core.now();
        for (const smid of frame.smids) {
          const ts = requestTs.get(smid);
          if (ts !== undefined) core.metrics.requestRoundTrip((writtenTs - ts) / 1000);
        }
      }
      if (!ok) {
        failed = true;
        break;
      }
    }
    if (written.length > 0 && !mark) core.metrics.delivered(written.length);
    else if (written.length > 0) {
      state.marking = true;
      const marked = this.#marker.submit({ sessionId, rowIds: written, connectionId: conn.connectionId });
      if (state.again) this.#marker.flushIfIdle();
      try {
        await marked;
      } finally {
        state.marking = false;
      }
      core.metrics.delivered(written.length);
    }
    return failed;
  }

  #envelopeOf(
    conn: MatsSocketConnection,
    row: StoredOutMessage,
    now: number,
    trustedJson: boolean,
  ): OutEnvelope | undefined {
    let envelope: OutEnvelope;
    try {
      envelope = JSON.parse(row.envelope) as OutEnvelope;
      if (row.messageText !== null && !trustedJson) JSON.parse(row.messageText);
    } catch {
      return undefined;
    }
    envelope.smid = row.smid;
    if (row.messageText !== null) envelope.msg = new RawJson(row.messageText);
    const node = this.#core.options.nodeName;
    const serverInitiated = row.type === 'SEND' || row.type === 'REQUEST';
    if (serverInitiated) markInitiated(envelope, envelope.debug);
    const debug: DebugInfo | undefined = serverInitiated
      ? serverInitiatedDebugAtWrite(envelope.debug, conn.s2cDebugOptions, node, now)
      : stampDebugAtWrite(envelope.debug, node, now);
    delete envelope.debug;
    if (debug !== undefined) envelope.debug = debug;
    return envelope;
  }

  /** Moves outbox rows to the DLQ (BR-2) and emits the event. */
  async deadLetter(
    sessionId: string,
    smids: string[],
    reason: DeadLetterReason,
    description: string,
  ): Promise<string[]> {
    const core = this.#core;
    const moved = await core.store.outboxMessagesDeadLetter(sessionId, smids, reason, description);
    if (moved.length > 0) {
      core.metrics.deadLettered(reason, moved.length);
      core.events.emit('deadLetter', { sessionId, smids: moved, reason, description });
      core.logger.info({ sessionId, smids: moved, reason }, 'outbox messages dead-lettered');
    }
    return moved;
  }
}

/** Bytes added at write time at most: smid, debug stamps, frame brackets. */
const WRITE_OVERHEAD_BYTES = 4096;

/**
 * Whether a row's frame is within `maxFrameBytes` without encoding it (UTF-8 takes at most 3 bytes per UTF-16 code
 * unit): the exact check encodes the whole frame once more per message, which only a large row needs.
 */
function certainlyWithinFrame(row: StoredOutMessage, maxFrameBytes: number): boolean {
  if (row.messageBinary !== null) return false;
  return 3 * (row.envelope.length + (row.messageText?.length ?? 0)) + WRITE_OVERHEAD_BYTES <= maxFrameBytes;
}

function frameBytes(envelope: OutEnvelope): number {
  return Buffer.byteLength(encodeFrame([envelope]));
}
