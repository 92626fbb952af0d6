import type { SessionIds } from '../../store/storeTypes.ts';
import type { MatsSocketConnection } from '../connection/MatsSocketConnection.ts';
import type { ClientNack, ServerCore } from '../ServerCore.ts';
import type { AfterCommit } from '../messaging/AfterCommit.ts';
import type { CommittedEffects } from '../messaging/CommittedEffects.ts';
import { GroupCommitter } from '../messaging/GroupCommitter.ts';
import {
  retryWhileDatabaseUnavailable,
  serverOutageRetry,
} from '../messaging/retryWhileDatabaseUnavailable.ts';
import { InFlightLimiter } from './InFlightLimiter.ts';
import type { ReplyTerminatorInvoker } from './ReplyTerminatorInvoker.ts';

/**
 * Client acknowledgements (docs/protocol.md 7.2 steps 5-6): ACKs complete outbox rows, then ACK2 (25 ms); a NACK
 * completes (or, with `deadLetterOnNack`, dead-letters) the row and, for a server REQUEST, tells its reply terminator
 * (BR-4, message type NACK); ACK2 deletes inbox rows. ACKs and ACK2s of all sessions are settled together, one
 * store call per window (a client sends both in one frame, so on MySQL/MariaDB both deletes share a round trip).
 *
 * A client chooses how many ids it sends, so the ids being settled are bounded per connection (the frame
 * processing waits beyond it), and NACKs are settled in chunks of {@link NACK_CHUNK}, one transaction each,
 * one after the other: a flood of ids costs its sender time, not the other sessions their connection pool.
 */
/** NACKed smids settled per transaction (the outbox delete or dead-lettering is one store call per chunk). */
const NACK_CHUNK = 200;

/** One settling of the ACK window: an ACK's outbox rows or an ACK2's inbox rows. */
type AckWork = { kind: 'ack' | 'ack2'; entry: SessionIds };

export class AckProcessor {
  readonly #core: ServerCore;
  readonly #invoker: ReplyTerminatorInvoker;
  readonly #afterCommit: AfterCommit;
  readonly #settler: GroupCommitter<AckWork, void>;
  readonly #connectionIds = new WeakMap<MatsSocketConnection, InFlightLimiter>();

  constructor(core: ServerCore, invoker: ReplyTerminatorInvoker, afterCommit: AfterCommit) {
    this.#core = core;
    this.#invoker = invoker;
    this.#afterCommit = afterCommit;
    const windowMs = core.options.timings.storeBatchWindowMs;
    // A database restart delays these cleanup writes instead of dropping them (rows would linger until a resume).
    const retry = serverOutageRetry(core, 'retrying ACK bookkeeping');
    // Bookkeeping nobody's reply waits for: even at low load it waits the window for others to share the statement
    // (at a few hundred trips/s that is one delete for several sessions instead of one each).
    this.#settler = new GroupCommitter({
      windowMs,
      eagerWhenIdle: false,
      maxItems: 1000,
      commit: async (items) => {
        const completed = items.filter((w) => w.kind === 'ack').map((w) => w.entry);
        const inboxDeleted = items.filter((w) => w.kind === 'ack2').map((w) => w.entry);
        await retryWhileDatabaseUnavailable(
          () => core.store.settleClientAcksBatch(completed, inboxDeleted),
          retry,
        );
        return items.map(() => undefined);
      },
    });
  }

  async onClientAcks(
    conn: MatsSocketConnection,
    acks: readonly string[],
    nacks: readonly ClientNack[],
  ): Promise<void> {
    const sessionId = conn.sessionId;
    if (!sessionId) return;
    const core = this.#core;
    if (acks.length > 0) {
      const release = await this.#admit(conn, acks.length);
      void core.track(
        this.#settler
          .submit({ kind: 'ack', entry: { sessionId, ids: [...acks] } })
          .then(() => this.#ack2(conn, acks))
          .catch((err: unknown) =>
            conn.log.warn({ err, sessionId }, 'could not complete ACKed outbox messages'),
          )
          .finally(release),
      );
    }
    if (nacks.length > 0) {
      const release = await this.#admit(conn, nacks.length);
      void core.track(this.#settleNacks(conn, sessionId, nacks).finally(release));
    }
  }

  async onClientAck2(conn: MatsSocketConnection, cmids: readonly string[]): Promise<void> {
    const sessionId = conn.sessionId;
    if (!sessionId) return;
    for (const cmid of cmids) conn.seenCmids.delete(cmid);
    const release = await this.#admit(conn, cmids.length);
    void this.#core.track(
      this.#settler
        .submit({ kind: 'ack2', entry: { sessionId, ids: [...cmids] } })
        .catch((err: unknown) => conn.log.warn({ err, sessionId }, 'could not delete inbox rows on ACK2'))
        .finally(release),
    );
  }

  /** Waits until the connection may have `n` more ids being settled; returns their release. */
  async #admit(conn: MatsSocketConnection, n: number): Promise<() => void> {
    let limiter = this.#connectionIds.get(conn);
    if (!limiter) {
      limiter = new InFlightLimiter(this.#core.options.limits.maxAckIdsInFlightPerConnection);
      this.#connectionIds.set(conn, limiter);
    }
    const wait = limiter.acquire(n);
    if (wait) {
      this.#core.metrics.inboundLimit('maxAckIdsInFlightPerConnection');
      await wait;
    }
    return () => limiter.release(n);
  }

  /** One transaction per chunk; a chunk that fails is retried NACK by NACK, so one bad row fails only itself. */
  async #settleNacks(
    conn: MatsSocketConnection,
    sessionId: string,
    nacks: readonly ClientNack[],
  ): Promise<void> {
    for (let i = 0; i < nacks.length; i += NACK_CHUNK) {
      // A synchronous driver (better-sqlite3) settles a chunk without returning to the event loop: let other
      // sessions' I/O in between chunks.
      if (i > 0) await new Promise((resolve) => setImmediate(resolve));
      // Unsettled rows stay in the outbox: they are sent again after a resume and NACKed again (or go with the
      // session), so a flood need not outlive its connection.
      if (!conn.established) return;
      const chunk = nacks.slice(i, i + NACK_CHUNK);
      try {
        await this.#nackChunk(conn, sessionId, chunk);
      } catch (err) {
        if (chunk.length === 1) {
          conn.log.warn({ err, sessionId, smid: chunk[0]!.smid }, 'could not process a client NACK');
          continue;
        }
        for (const nack of chunk) {
          await this.#nackChunk(conn, sessionId, [nack]).catch((e: unknown) =>
            conn.log.warn({ err: e, sessionId, smid: nack.smid }, 'could not process a client NACK'),
          );
        }
      }
    }
  }

  #ack2(conn: MatsSocketConnection, smids: readonly string[]): void {
    const delay = this.#core.options.timings.ack2DelayMs;
    for (const smid of smids) conn.out.enqueue({ t: 'ACK2', smid }, delay);
  }

  async #nackChunk(
    conn: MatsSocketConnection,
    sessionId: string,
    nacks: readonly ClientNack[],
  ): Promise<void> {
    const core = this.#core;
    const deadLetter = core.options.deadLetterOnNack;
    const moved: { smids: string[]; desc: string | undefined }[] = [];
    const effects = await core.store.transaction(async (trx) => {
      if (deadLetter) {
        // One dead-lettering call per distinct description (a NACK envelope's ids share one).
        for (const [desc, smids] of groupByDescription(nacks)) {
          const smidsMoved = await core.store.outboxMessagesDeadLetter(
            sessionId,
            smids,
            'client_nack',
            desc ?? null,
            trx,
          );
          if (smidsMoved.length > 0) moved.push({ smids: smidsMoved, desc });
        }
      } else {
        await core.store.outboxMessagesComplete(
          sessionId,
          nacks.map((n) => n.smid),
          trx,
        );
      }
      const all: CommittedEffects[] = [];
      for (const nack of nacks) {
        const corr = await core.store.getAndDeleteRequestCorrelation(sessionId, nack.smid, trx);
        if (!corr) continue;
        all.push(
          await this.#invoker.invokeInTrx(trx, corr, {
            messageType: 'NACK',
            message: undefined,
            traceId: corr.traceId,
            cmid: undefined,
            description: nack.desc,
            conn,
          }),
        );
      }
      return all;
    }, 'client NACK');
    for (const { smids, desc } of moved) {
      core.metrics.deadLettered('client_nack', smids.length);
      core.events.emit('deadLetter', {
        sessionId,
        smids,
        reason: 'client_nack',
        ...(desc !== undefined ? { description: desc } : {}),
      });
    }
    for (const e of effects) this.#afterCommit.run(e);
    this.#ack2(
      conn,
      nacks.map((n) => n.smid),
    );
  }
}

function groupByDescription(nacks: readonly ClientNack[]): Map<string | undefined, string[]> {
  const groups = new Map<string | undefined, string[]>();
  for (const { smid, desc } of nacks) {
    const smids = groups.get(desc);
    if (smids) smids.push(smid);
    else groups.set(desc, [smid]);
  }
  return groups;
}
