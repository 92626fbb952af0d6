import { runOutsideStageContext } from '../../mats/ambientContext.ts';
import { replyDebugInfo, resolveDebugOptions } from '../../protocol/debugOptions.ts';
import type { C2SReply, C2SRequest, C2SSend } from '../../protocol/envelopes.ts';
import type { InboxEntry } from '../../store/storeTypes.ts';
import type { MatsSocketConnection } from '../connection/MatsSocketConnection.ts';
import type { OutEnvelope } from '../connection/OutgoingQueue.ts';
import type { InformationEnvelope, ServerCore } from '../ServerCore.ts';
import type { IncomingResolution } from '../ServerEvents.ts';
import { IncomingDescriptions, type MatsSocketEndpointDefinition } from './EndpointTypes.ts';
import { HandlerScope, runInHandlerScope } from './HandlerScope.ts';
import { IncomingAdmission } from './IncomingAdmission.ts';
import { IncomingContextImpl, type IncomingDecision } from './IncomingContextImpl.ts';
import type { CommitResult, IncomingCommitter, IncomingItem } from './IncomingCommitter.ts';
import {
  errorDescription,
  type CommittedEffects,
  type ReplyTerminatorInvoker,
  type TerminatorOutcome,
} from './ReplyTerminatorInvoker.ts';

/** The reference's `IncomingResolution` of each handler decision. */
const RESOLUTIONS: Record<IncomingDecision['kind'], IncomingResolution> = {
  none: 'NO_ACTION',
  deny: 'DENY',
  forward: 'FORWARD',
  resolve: 'RESOLVE',
  reject: 'REJECT',
};

/**
 * Asynchronous handling of information-bearing client messages (docs/protocol.md 8.5-8.8, 8.11 step 3). The incoming
 * handler runs first, without a transaction, collecting its decision and effects; a duplicate (inbox row present)
 * never runs it. The result is committed with others by the {@link IncomingCommitter}; the answer is scheduled
 * only after the commit. Client replies to server requests are de-duplicated by the correlation's
 * get-and-delete and run their reply terminator in that transaction.
 *
 * Messages pass an {@link IncomingAdmission} first (NACK for bad input, in-flight slots): {@link dispatch}
 * resolves once the message got its slots, so the connection's frame processing waits instead of queueing.
 */
export class IncomingProcessor {
  readonly #core: ServerCore;
  readonly #endpoints: ReadonlyMap<string, MatsSocketEndpointDefinition>;
  readonly #committer: IncomingCommitter;
  readonly #invoker: ReplyTerminatorInvoker;
  readonly #afterCommit: (effects: CommittedEffects) => void;
  readonly #admission: IncomingAdmission;

  constructor(
    core: ServerCore,
    endpoints: ReadonlyMap<string, MatsSocketEndpointDefinition>,
    committer: IncomingCommitter,
    invoker: ReplyTerminatorInvoker,
    afterCommit: (effects: CommittedEffects) => void,
  ) {
    this.#core = core;
    this.#endpoints = endpoints;
    this.#committer = committer;
    this.#invoker = invoker;
    this.#afterCommit = afterCommit;
    this.#admission = new IncomingAdmission(core);
  }

  /** Resolves when the message was NACKed or started (it then completes on its own); never rejects. */
  async dispatch(
    conn: MatsSocketConnection,
    envelope: InformationEnvelope,
    receivedTs: number,
  ): Promise<void> {
    const admission = await this.#admission.admit(conn, envelope);
    if ('refused' in admission) {
      conn.recorder.resolved(envelope.cmid, undefined, conn);
      const nack: OutEnvelope = { t: 'NACK', cmid: envelope.cmid, desc: admission.refused };
      conn.out.enqueue(nack, this.#core.options.timings.ackDelayMs);
      return;
    }
    // The session may have ended while waiting: nothing was done, the client resends after resuming.
    if (!conn.established) admission.release();
    else void this.#start(conn, envelope, receivedTs).finally(admission.release);
  }

  #start(conn: MatsSocketConnection, envelope: InformationEnvelope, receivedTs: number): Promise<void> {
    let work: Promise<void>;
    if (envelope.t === 'SEND' || envelope.t === 'REQUEST') {
      // A copy of a message still being handled waits for it, so the duplicate check then sees its inbox row.
      const cmid = envelope.cmid;
      const previous = conn.inFlightCmids.get(cmid);
      work = previous
        ? previous.then(() => this.#handleClientMessage(conn, envelope, receivedTs))
        : this.#handleClientMessage(conn, envelope, receivedTs);
      const tracked = work.catch(() => undefined);
      conn.inFlightCmids.set(cmid, tracked);
      void tracked.then(() => {
        // A path that did not run the handler (duplicate, RETRY) reports the message event now.
        conn.recorder.resolved(cmid, undefined, conn);
        if (conn.inFlightCmids.get(cmid) === tracked) conn.inFlightCmids.delete(cmid);
      });
    } else work = this.#handleClientReply(conn, envelope);
    return this.#core.track(
      work.catch((err: unknown) => {
        conn.log.error(
          { err, cmid: envelope.cmid },
          'unexpected failure handling an incoming message: RETRY',
        );
        this.#retry(conn, envelope.cmid, errorDescription(err));
      }),
    );
  }

  async #handleClientMessage(
    conn: MatsSocketConnection,
    env: C2SSend | C2SRequest,
    receivedTs: number,
  ): Promise<void> {
    const core = this.#core;
    const sessionId = conn.sessionId!;
    const type = env.t;
    let existing: InboxEntry | null = null;
    if (conn.mayBeDuplicate(env.cmid)) {
      try {
        existing = await core.store.getMessageFromInbox(sessionId, env.cmid);
      } catch (err) {
        this.#retry(conn, env.cmid, errorDescription(err));
        return;
      }
    }
    if (existing) {
      this.#answerDuplicate(conn, env, existing);
      return;
    }
    const resolved = type === 'REQUEST' ? resolveDebugOptions(env.rd, conn.auth.allowedDebugOptions) : 0;
    const endpoint = this.#endpoints.get(env.eid);
    const item: IncomingItem = {
      sessionId,
      cmid: env.cmid,
      forwards: [],
      forwardContext: {
        sessionId,
        traceId: env.tid,
        endpointId: env.eid,
        clientTimeoutMs: type === 'REQUEST' ? env.to : undefined,
        replyState:
          type === 'REQUEST'
            ? {
                sid: sessionId,
                cmid: env.cmid,
                eid: env.eid,
                tid: env.tid,
                rd: resolved,
                cmrts: receivedTs,
                cmrnn: core.options.nodeName,
              }
            : undefined,
      },
      outbox: [],
      publishes: [],
      answer: undefined,
    };
    const nack = (desc: string): OutEnvelope => ({ t: 'NACK', cmid: env.cmid, desc });
    let ownTrx: ReturnType<IncomingContextImpl['getSql']> | undefined;
    if (!endpoint) item.answer = nack(IncomingDescriptions.nonExisting(type));
    else if (type === 'REQUEST' && endpoint.kind === 'terminator')
      item.answer = nack(IncomingDescriptions.terminator);
    else {
      const ctx = new IncomingContextImpl({
        endpointId: env.eid,
        messageType: type,
        message: env.msg,
        traceId: env.tid,
        sessionId,
        cmid: env.cmid,
        smid: undefined,
        userId: conn.auth.userId,
        principal: conn.auth.principal,
        authorizationValue: conn.auth.authorization,
        connectionInfo: conn.info,
        resolvedDebugOptions: resolved,
        clientTimeoutMs: type === 'REQUEST' ? env.to : undefined,
        correlationString: undefined,
        correlationBinary: undefined,
        description: undefined,
        log: conn.log.child({ sessionId, traceId: env.tid, endpointId: env.eid }),
        db: core.store.knex,
      });
      const scope = new HandlerScope();
      let threw: unknown;
      const started = performance.now();
      try {
        await runInHandlerScope(scope, () => runOutsideStageContext(() => endpoint.incoming(ctx)));
      } catch (err) {
        threw = err ?? new Error('undefined thrown');
      } finally {
        ctx.close();
        scope.close();
      }
      conn.recorder.resolved(
        env.cmid,
        {
          resolution: threw !== undefined ? 'EXCEPTION' : RESOLUTIONS[ctx.decision.kind],
          forwardedTo: threw === undefined ? ctx.forwards[0]?.to : undefined,
          resolutionMs: performance.now() - started,
        },
        conn,
      );
      ownTrx = ctx.ownTransaction;
      if (threw !== undefined) {
        ctx.log.info({ err: threw }, 'incoming handler threw: NACK');
        item.answer = nack(errorDescription(threw));
        if (ownTrx) await rollback(ownTrx);
        ownTrx = undefined;
      } else {
        const decision = ctx.decision;
        item.forwards = ctx.forwards;
        item.outbox = scope.outbox;
        item.publishes = scope.publishes;
        if (decision.kind === 'deny') item.answer = nack(IncomingDescriptions.denied(type));
        else if (decision.kind === 'none' && type === 'REQUEST')
          item.answer = nack(IncomingDescriptions.ignoredRequest);
        else if (decision.kind === 'resolve' || decision.kind === 'reject') {
          item.answer = {
            t: decision.kind === 'resolve' ? 'RESOLVE' : 'REJECT',
            cmid: env.cmid,
            tid: env.tid,
            ...(decision.message !== undefined ? { msg: decision.message } : {}),
            ...debugOf(resolved, receivedTs, core.options.nodeName),
          };
        }
      }
    }
    if (!conn.established) {
      // The session ended while the handler ran: nothing is committed; the client resends after resume.
      if (ownTrx) await rollback(ownTrx);
      return;
    }
    const result = ownTrx
      ? await this.#committer.commitInOwnTransaction(item, await ownTrx)
      : await this.#committer.commit(item);
    this.#answer(conn, env, endpoint, result);
  }

  #answer(
    conn: MatsSocketConnection,
    env: C2SSend | C2SRequest,
    endpoint: MatsSocketEndpointDefinition | undefined,
    result: CommitResult,
  ): void {
    const t = this.#core.options.timings;
    switch (result.kind) {
      case 'stored': {
        this.#afterCommit(result);
        const answer = result.answer;
        if (!answer) {
          if (env.t === 'SEND') conn.out.enqueue({ t: 'ACK', cmid: env.cmid }, t.ackDelayMs);
          else conn.out.enqueue({ t: 'ACK', cmid: env.cmid }, t.requestAckDelayMs, { elidable: true });
        } else if (answer.t === 'RESOLVE') {
          conn.out.enqueue(answer, endpoint?.immediateReplies ? 0 : t.instaResolveDelayMs, {
            stamp: 'reply',
          });
        } else if (answer.t === 'REJECT') {
          conn.out.enqueue(answer, endpoint?.immediateReplies ? 0 : t.instaRejectDelayMs, { stamp: 'reply' });
        } else conn.out.enqueue(answer, t.ackDelayMs);
        return;
      }
      case 'duplicate':
        void this.#core.track(
          this.#core.store
            .getMessageFromInbox(conn.sessionId!, env.cmid)
            .then((entry) => this.#answerDuplicate(conn, env, entry))
            .catch(() => this.#answerDuplicate(conn, env, null)),
        );
        return;
      case 'gone':
        this.#retry(conn, env.cmid, 'The session is gone');
        return;
      case 'retry':
        this.#retry(conn, env.cmid, result.desc);
        return;
    }
  }

  #answerDuplicate(conn: MatsSocketConnection, env: C2SSend | C2SRequest, entry: InboxEntry | null): void {
    const delay = this.#core.options.timings.ackDelayMs;
    if (entry?.fullEnvelope) {
      try {
        const stored = JSON.parse(entry.fullEnvelope) as OutEnvelope;
        conn.out.enqueue({ ...stored, desc: `dupe ${env.t} stored` }, delay, { stamp: 'reply' });
        return;
      } catch {
        // Fall back to a plain ACK.
      }
    }
    conn.out.enqueue({ t: 'ACK', cmid: env.cmid, desc: `dupe ${env.t} ACK` }, delay);
  }

  /** A client RESOLVE/REJECT to a server REQUEST (8.11 step 3). */
  async #handleClientReply(conn: MatsSocketConnection, env: C2SReply): Promise<void> {
    const core = this.#core;
    const sessionId = conn.sessionId!;
    let outcome: TerminatorOutcome | 'dupe';
    try {
      outcome = await core.store.transaction(async (trx) => {
        const corr = await core.store.getAndDeleteRequestCorrelation(sessionId, env.smid, trx);
        if (!corr) return 'dupe' as const;
        return this.#invoker.invokeInTrx(trx, corr, {
          messageType: env.t,
          message: env.msg,
          traceId: env.tid,
          cmid: env.cmid,
          description: undefined,
          conn,
        });
      }, 'client reply');
    } catch (err) {
      this.#retry(conn, env.cmid, errorDescription(err));
      return;
    }
    const t = core.options.timings;
    if (outcome === 'dupe') {
      conn.out.enqueue({ t: 'ACK', cmid: env.cmid, desc: `dupe ${env.t}` }, t.ackDelayMs);
      return;
    }
    this.#afterCommit(outcome);
    if (outcome.ack) conn.out.enqueue({ t: 'ACK', cmid: env.cmid }, t.requestAckDelayMs);
    else conn.out.enqueue({ t: 'NACK', cmid: env.cmid, desc: outcome.desc }, t.ackDelayMs);
  }

  #retry(conn: MatsSocketConnection, cmid: string, desc: string): void {
    conn.out.enqueue({ t: 'RETRY', cmid, desc }, this.#core.options.timings.ackDelayMs);
  }
}

function debugOf(
  resolved: number,
  cmrts: number,
  node: string,
): { debug: NonNullable<OutEnvelope['debug']> } | object {
  const debug = replyDebugInfo(resolved, { cmrts, cmrnn: node });
  return debug ? { debug } : {};
}

async function rollback(trx: ReturnType<IncomingContextImpl['getSql']>): Promise<void> {
  try {
    const t = await trx;
    if (!t.isCompleted()) await t.rollback();
  } catch {
    // Nothing was committed.
  }
}
