import { ErrorCode, MatsSocketServerError } from '../../errors.ts';
import { currentStageContext } from '../../mats/ambientContext.ts';
import { serverInitiatedDebugAtCreation } from '../../protocol/debugOptions.ts';
import type { OutboxMessageInput } from '../../store/storeTypes.ts';
import type { NodeControl } from '../cluster/NodeControl.ts';
import { closePendingResumes } from '../connection/PendingResumes.ts';
import type { ServerCore } from '../ServerCore.ts';
import type { AfterCommit } from '../messaging/AfterCommit.ts';
import type { MatsSocketEndpointDefinition } from '../messaging/EndpointTypes.ts';
import { currentHandlerScope } from '../messaging/HandlerScope.ts';
import { newSmid, type OutboxWriter } from '../messaging/OutboxWriter.ts';

/** Options of a server-to-client request. */
export interface ServerRequestOptions {
  /** How long the client has to answer before the reply terminator gets TIMEOUT (BR-4), in ms. @default serverRequestTimeoutMs */
  timeoutMs?: number;
}

function illegal(message: string): MatsSocketServerError {
  return new MatsSocketServerError(ErrorCode.SERVER_ILLEGAL_CALL, message);
}

function requireString(value: unknown, name: string): string {
  if (typeof value !== 'string' || value.length === 0) throw illegal(`${name} must be a non-empty string`);
  return value;
}

/**
 * Server-initiated messages (docs/protocol.md 8.10, 8.11, 8.16), callable on any node. The outbox row is stored:
 * inside a MatsSocket handler, with the handling (collected); inside a Mats stage, in the stage's transaction with
 * the poke as one of the stage's outgoing messages; otherwise in its own transaction, poked after the commit.
 */
export class ServerMessaging {
  readonly #core: ServerCore;
  readonly #outbox: OutboxWriter;
  readonly #nodeControl: NodeControl;
  readonly #afterCommit: AfterCommit;
  readonly #endpoints: ReadonlyMap<string, MatsSocketEndpointDefinition>;

  constructor(
    core: ServerCore,
    outbox: OutboxWriter,
    nodeControl: NodeControl,
    afterCommit: AfterCommit,
    endpoints: ReadonlyMap<string, MatsSocketEndpointDefinition>,
  ) {
    this.#core = core;
    this.#outbox = outbox;
    this.#nodeControl = nodeControl;
    this.#afterCommit = afterCommit;
    this.#endpoints = endpoints;
  }

  // async so that a bad argument or a stopped server rejects the returned promise instead of throwing at the call.
  async send(
    sessionId: string,
    traceId: string,
    clientTerminatorId: string,
    message: unknown,
  ): Promise<boolean> {
    const input = this.#input('SEND', sessionId, traceId, clientTerminatorId, message);
    return this.#store(input);
  }

  async request(
    sessionId: string,
    traceId: string,
    clientEndpointId: string,
    message: unknown,
    replyToTerminatorId: string,
    correlationString?: string,
    correlationBinary?: Uint8Array,
    options: ServerRequestOptions = {},
  ): Promise<boolean> {
    this.#core.requireRunning();
    requireString(replyToTerminatorId, 'replyToTerminatorId');
    if (!this.#endpoints.has(replyToTerminatorId)) {
      throw illegal(`The reply terminator '${replyToTerminatorId}' is not a registered MatsSocket endpoint`);
    }
    const timeoutMs = options.timeoutMs ?? this.#core.options.timings.serverRequestTimeoutMs;
    if (!Number.isFinite(timeoutMs) || timeoutMs < 0) throw illegal('timeoutMs must be a number >= 0');
    const input = this.#input('REQUEST', sessionId, traceId, clientEndpointId, message);
    const now = this.#core.now();
    input.correlation = {
      requestTs: now,
      expiresTs: now + timeoutMs,
      replyTerminatorId: replyToTerminatorId,
      clientEndpointId,
      correlationText: correlationString ?? null,
      correlationBinary: correlationBinary ?? null,
    };
    return this.#store(input);
  }

  #input(
    type: 'SEND' | 'REQUEST',
    sessionId: string,
    traceId: string,
    eid: string,
    message: unknown,
  ): OutboxMessageInput {
    this.#core.requireRunning();
    requireString(sessionId, 'sessionId');
    requireString(eid, type === 'SEND' ? 'clientTerminatorId' : 'clientEndpointId');
    if (typeof traceId !== 'string') throw illegal('traceId must be a string');
    const core = this.#core;
    const envelope = {
      t: type,
      eid,
      tid: traceId,
      debug: serverInitiatedDebugAtCreation(core.options.nodeName, core.now()),
    };
    return {
      sessionId,
      smid: newSmid(),
      traceId,
      type,
      envelope: JSON.stringify(envelope),
      messageText: message === undefined ? null : JSON.stringify(message),
    };
  }

  /** @returns false when the session does not exist (the message is dropped); true when stored or collected. */
  async #store(input: OutboxMessageInput): Promise<boolean> {
    const scope = currentHandlerScope();
    if (scope) {
      scope.outbox.push(input);
      return true;
    }
    const stage = currentStageContext();
    if (stage) {
      const trx = await stage.sql();
      const [result] = await this.#outbox.store([input], trx);
      await this.#nodeControl.pokeFromStage(stage, [result!.currentNode]);
      return result!.sessionExists;
    }
    const [result] = await this.#core.store.transaction(
      (trx) => this.#outbox.store([input], trx),
      'server send',
    );
    this.#afterCommit.poke([result!.currentNode]);
    return result!.sessionExists;
  }

  /**
   * Closes a session from any node (8.16): its holder closes the connection with 4000 and terminates it; a session
   * not held anywhere is deleted from the store directly. Nothing happens if it does not exist.
   */
  async closeSession(sessionId: string, reason: string): Promise<void> {
    const core = this.#core;
    const local = core.registry.get(sessionId);
    if (local) {
      local.close(4000, `Server Side: ${reason}`);
      await local.ended;
      return;
    }
    closePendingResumes(core, sessionId, reason);
    const reg = await core.store.getCurrentRegisteredNodeForSession(sessionId);
    if (reg && reg.nodename !== core.options.nodeName) {
      await this.#nodeControl.sendCloseSession(reg.nodename, sessionId, reason);
      return;
    }
    if (await core.store.closeSession(sessionId)) {
      core.events.emit('sessionRemoved', { type: 'CLOSE', sessionId, reason });
    }
  }
}
