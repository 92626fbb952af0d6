import type { SessionIds } from '../../store/storeTypes.ts';
import type { MatsSocketConnection } from '../connection/MatsSocketConnection.ts';
import type { ClientNack, ServerCore } from '../ServerCore.ts';
import { GroupCommitter } from './GroupCommitter.ts';
import { retryWhileDatabaseUnavailable, serverOutageRetry } from './retryWhileDatabaseUnavailable.ts';
import type { CommittedEffects, ReplyTerminatorInvoker } from './ReplyTerminatorInvoker.ts';

/**
 * Client acknowledgements (docs/protocol.md 7.2 steps 5-6): ACKs complete outbox rows (batched across sessions),
 * then ACK2 (25 ms); a NACK completes (or, with `deadLetterOnNack`, dead-letters) the row and, for a server
 * REQUEST, tells its reply terminator (BR-4, message type NACK); ACK2 deletes inbox rows (batched).
 */
export class AckProcessor {
  readonly #core: ServerCore;
  readonly #invoker: ReplyTerminatorInvoker;
  readonly #afterCommit: (effects: CommittedEffects) => void;
  readonly #completer: GroupCommitter<SessionIds, void>;
  readonly #inboxDeleter: GroupCommitter<SessionIds, void>;

  constructor(
    core: ServerCore,
    invoker: ReplyTerminatorInvoker,
    afterCommit: (effects: CommittedEffects) => void,
  ) {
    this.#core = core;
    this.#invoker = invoker;
    this.#afterCommit = afterCommit;
    const windowMs = core.options.timings.storeBatchWindowMs;
    // A database restart delays these cleanup writes instead of dropping them (rows would linger until a resume).
    const retry = serverOutageRetry(core, 'retrying ACK bookkeeping');
    this.#completer = new GroupCommitter({
      windowMs,
      maxItems: 500,
      commit: async (items) => {
        await retryWhileDatabaseUnavailable(() => core.store.outboxMessagesCompleteBatch(items), retry);
        return items.map(() => undefined);
      },
    });
    this.#inboxDeleter = new GroupCommitter({
      windowMs,
      maxItems: 500,
      commit: async (items) => {
        await retryWhileDatabaseUnavailable(() => core.store.deleteMessageIdsFromInboxBatch(items), retry);
        return items.map(() => undefined);
      },
    });
  }

  onClientAcks(conn: MatsSocketConnection, acks: readonly string[], nacks: readonly ClientNack[]): void {
    const sessionId = conn.sessionId;
    if (!sessionId) return;
    const core = this.#core;
    if (acks.length > 0) {
      void core.track(
        this.#completer
          .submit({ sessionId, ids: [...acks] })
          .then(() => this.#ack2(conn, acks))
          .catch((err: unknown) =>
            conn.log.warn({ err, sessionId }, 'could not complete ACKed outbox messages'),
          ),
      );
    }
    for (const nack of nacks) {
      void core.track(
        this.#nack(conn, sessionId, nack).catch((err: unknown) =>
          conn.log.warn({ err, sessionId, smid: nack.smid }, 'could not process a client NACK'),
        ),
      );
    }
  }

  onClientAck2(conn: MatsSocketConnection, cmids: readonly string[]): void {
    const sessionId = conn.sessionId;
    if (!sessionId) return;
    for (const cmid of cmids) conn.seenCmids.delete(cmid);
    void this.#core.track(
      this.#inboxDeleter
        .submit({ sessionId, ids: [...cmids] })
        .catch((err: unknown) => conn.log.warn({ err, sessionId }, 'could not delete inbox rows on ACK2')),
    );
  }

  #ack2(conn: MatsSocketConnection, smids: readonly string[]): void {
    const delay = this.#core.options.timings.ack2DelayMs;
    for (const smid of smids) conn.out.enqueue({ t: 'ACK2', smid }, delay);
  }

  async #nack(conn: MatsSocketConnection, sessionId: string, nack: ClientNack): Promise<void> {
    const core = this.#core;
    const deadLetter = core.options.deadLetterOnNack;
    let moved: string[] = [];
    const effects = await core.store.transaction(async (trx) => {
      if (deadLetter) {
        moved = await core.store.outboxMessagesDeadLetter(
          sessionId,
          [nack.smid],
          'client_nack',
          nack.desc ?? null,
          trx,
        );
      } else {
        await core.store.outboxMessagesComplete(sessionId, [nack.smid], trx);
      }
      const corr = await core.store.getAndDeleteRequestCorrelation(sessionId, nack.smid, trx);
      if (!corr) return undefined;
      return this.#invoker.invokeInTrx(trx, corr, {
        messageType: 'NACK',
        message: undefined,
        traceId: corr.traceId,
        cmid: undefined,
        description: nack.desc,
        conn,
      });
    }, 'client NACK');
    if (moved.length > 0) {
      core.metrics.deadLettered('client_nack', moved.length);
      core.events.emit('deadLetter', {
        sessionId,
        smids: moved,
        reason: 'client_nack',
        ...(nack.desc !== undefined ? { description: nack.desc } : {}),
      });
    }
    if (effects) this.#afterCommit(effects);
    this.#ack2(conn, [nack.smid]);
  }

  async idle(): Promise<void> {
    await Promise.all([this.#completer.idle(), this.#inboxDeleter.idle()]);
  }
}
