import type { Knex } from 'knex';
import { DataAccessError, ErrorCode, MatsSocketError, TransportError } from '../../errors.ts';
import { runOutsideStageContext } from '../../mats/ambientContext.ts';
import type { RequestCorrelation } from '../../store/storeTypes.ts';
import { TransactionScript } from '../../store/TransactionScript.ts';
import type { MatsSocketConnection } from '../connection/MatsSocketConnection.ts';
import type { CommittedEffects } from '../messaging/CommittedEffects.ts';
import { HandlerScope, runInHandlerScope } from '../messaging/HandlerScope.ts';
import type { OutboxWriter } from '../messaging/OutboxWriter.ts';
import type { ServerCore } from '../ServerCore.ts';
import type { PreparedPublish, TopicHub } from '../topics/TopicHub.ts';
import {
  IncomingDescriptions,
  type IncomingMessageType,
  type MatsSocketEndpointDefinition,
} from '../messaging/EndpointTypes.ts';
import type { ForwardInitiator } from './ForwardInitiator.ts';
import { IncomingContextImpl } from './IncomingContextImpl.ts';

/** The outcome of invoking a reply terminator. */
export type TerminatorOutcome = ({ ack: true } | { ack: false; desc: string }) & CommittedEffects;

export interface InvokeParams {
  messageType: Extract<IncomingMessageType, 'RESOLVE' | 'REJECT' | 'NACK' | 'TIMEOUT'>;
  message: unknown;
  /** The reply's tid; the request's traceId for NACK/TIMEOUT. */
  traceId: string;
  cmid: string | undefined;
  description: string | undefined;
  /** The live connection of the session on this node, if any. */
  conn: MatsSocketConnection | undefined;
}

/** True for infrastructure failures (→ roll back everything, RETRY) as opposed to application errors (→ NACK). */
export function isInfrastructureError(err: unknown): boolean {
  if (err instanceof DataAccessError || err instanceof TransportError) return true;
  return (
    err instanceof MatsSocketError &&
    (err.code === ErrorCode.MATS_BACKEND || err.code === ErrorCode.MATS_MESSAGE_SEND)
  );
}

/** `ErrorName: message`, the NACK desc of a throwing handler (docs/protocol.md 8.8). */
export function errorDescription(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return `Error: ${String(err)}`;
}

class DenySignal extends Error {}

/**
 * Runs the reply terminator of a server-to-client request (docs/protocol.md 8.11 step 3, BR-4) inside the caller's
 * transaction, in a savepoint: its effects (its SQL, forwards, `server.send/request/publish`) commit with the
 * correlation's get-and-delete, or roll back alone when it throws or denies (→ NACK).
 */
export class ReplyTerminatorInvoker {
  readonly #core: ServerCore;
  readonly #endpoints: ReadonlyMap<string, MatsSocketEndpointDefinition>;
  readonly #forwards: ForwardInitiator;
  readonly #outbox: OutboxWriter;
  readonly #topics: TopicHub;

  constructor(
    core: ServerCore,
    endpoints: ReadonlyMap<string, MatsSocketEndpointDefinition>,
    forwards: ForwardInitiator,
    outbox: OutboxWriter,
    topics: TopicHub,
  ) {
    this.#core = core;
    this.#endpoints = endpoints;
    this.#forwards = forwards;
    this.#outbox = outbox;
    this.#topics = topics;
  }

  async invokeInTrx(
    trx: Knex.Transaction,
    corr: RequestCorrelation,
    p: InvokeParams,
  ): Promise<TerminatorOutcome> {
    const none: CommittedEffects = { registrations: [], publishes: [] };
    const endpoint = this.#endpoints.get(corr.replyTerminatorId);
    if (!endpoint) return { ack: false, desc: IncomingDescriptions.nonExisting(p.messageType), ...none };
    const core = this.#core;
    try {
      return await trx.transaction(async (sp) => {
        const auth = p.conn?.auth;
        const ctx = new IncomingContextImpl({
          endpointId: corr.replyTerminatorId,
          messageType: p.messageType,
          message: p.message,
          traceId: p.traceId,
          sessionId: corr.sessionId,
          cmid: p.cmid,
          smid: corr.smid,
          userId: auth?.userId,
          principal: auth?.principal,
          authorizationValue: auth?.authorization,
          connectionInfo: p.conn?.info,
          resolvedDebugOptions: 0,
          clientTimeoutMs: undefined,
          correlationString: corr.correlationText ?? undefined,
          correlationBinary: corr.correlationBinary ?? undefined,
          description: p.description,
          log: core.logger.child({
            sessionId: corr.sessionId,
            traceId: p.traceId,
            endpointId: corr.replyTerminatorId,
          }),
          db: core.store.knex,
          trx: sp,
        });
        const scope = new HandlerScope();
        try {
          await runInHandlerScope(scope, () => runOutsideStageContext(() => endpoint.incoming(ctx)));
        } finally {
          ctx.close();
          scope.close();
        }
        if (ctx.decision.kind === 'deny') throw new DenySignal();
        const context = {
          sessionId: corr.sessionId,
          traceId: p.traceId,
          endpointId: corr.replyTerminatorId,
          clientTimeoutMs: undefined,
          replyState: undefined,
        };
        await this.#forwards.initiate(
          [{ forwards: ctx.forwards, context }],
          TransactionScript.joining(sp, core.store.dialect),
        );
        const results = await this.#outbox.store(scope.outbox, sp);
        const publishes: PreparedPublish[] = [];
        for (const pub of scope.publishes) publishes.push(await this.#topics.prepare(pub, sp));
        return { ack: true as const, registrations: results.map((r) => r.currentNode), publishes };
      });
    } catch (err) {
      if (err instanceof DenySignal)
        return { ack: false, desc: IncomingDescriptions.denied(p.messageType), ...none };
      if (isInfrastructureError(err)) throw err;
      core.logger.info({ err, endpointId: corr.replyTerminatorId }, 'reply terminator threw: NACK');
      return { ack: false, desc: errorDescription(err), ...none };
    }
  }
}
