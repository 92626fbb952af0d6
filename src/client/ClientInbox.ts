import type { C2SReply, S2CSendOrRequest } from '../protocol/envelopes.ts';
import type { MatsSocketClientEvents, MessageEvent } from './clientEvents.ts';
import { ClientUsageError } from './clientErrors.ts';
import { toDebugInformation } from './debugInformation.ts';

/** Receives server SENDs, and replies routed to it by `requestReplyTo` (`onReject` gets REJECT, TIMEOUT, ...). */
export interface TerminatorRegistration {
  onMessage: (event: MessageEvent) => void;
  onReject: ((event: MessageEvent) => void) | undefined;
}

/** Answers server REQUESTs: the returned value (or promise) RESOLVEs, a throw (or rejection) REJECTs. */
export type EndpointHandler = (event: MessageEvent) => unknown;

/** The client endpoint every client has (docs/protocol.md section 8.14). */
export const RENEW_AUTH_ENDPOINT = 'MatsSocket.renewAuth';

/** What the inbox needs from its client. */
export interface ClientInboxHost {
  ack(smid: string): void;
  nack(smid: string, description: string): void;
  /** Allocates the next cmid for a reply. */
  nextCmid(): string;
  /** Puts our RESOLVE/REJECT in the outbox. */
  addReply(envelope: C2SReply): void;
  emit<K extends keyof MatsSocketClientEvents>(name: K, event: MatsSocketClientEvents[K]): void;
}

function assertNotReserved(kind: string, id: string): void {
  if (typeof id !== 'string' || id.length === 0)
    throw new ClientUsageError(`${kind} id must be a non-empty string`);
  if (id.startsWith('MatsSocket')) {
    throw new ClientUsageError(`the namespace "MatsSocket" is reserved: ${kind} id [${id}] is illegal`);
  }
}

/** An endpoint's rejection as a JSON-able message: an Error becomes `{ name, message }`. */
function rejectionMessage(reason: unknown): unknown {
  return reason instanceof Error ? { name: reason.name, message: reason.message } : reason;
}

/**
 * The client side of server-initiated messages (docs/protocol.md sections 8.10, 8.11, 9.2): the registered terminators
 * and endpoints, and the inbox of smids that de-duplicates redeliveries until the server's ACK2.
 */
export class ClientInbox {
  private readonly host: ClientInboxHost;
  private readonly terminators = new Map<string, TerminatorRegistration>();
  private readonly endpoints = new Map<string, EndpointHandler>();
  private readonly smids = new Set<string>();

  constructor(host: ClientInboxHost, renewAuth: EndpointHandler) {
    this.host = host;
    this.endpoints.set(RENEW_AUTH_ENDPOINT, renewAuth);
  }

  /** smids received and not yet ACK2ed by the server. */
  get size(): number {
    return this.smids.size;
  }

  addTerminator(id: string, registration: TerminatorRegistration): void {
    assertNotReserved('terminator', id);
    if (this.terminators.has(id)) throw new ClientUsageError(`terminator [${id}] is already registered`);
    this.terminators.set(id, registration);
  }

  addEndpoint(id: string, handler: EndpointHandler): void {
    assertNotReserved('endpoint', id);
    if (this.endpoints.has(id)) throw new ClientUsageError(`endpoint [${id}] is already registered`);
    this.endpoints.set(id, handler);
  }

  terminator(id: string): TerminatorRegistration | undefined {
    return this.terminators.get(id);
  }

  /** ACK2 from the server: it can never deliver these again. */
  forget(smids: readonly string[]): void {
    for (const smid of smids) this.smids.delete(smid);
  }

  clear(): void {
    this.smids.clear();
  }

  /** A server SEND or REQUEST: ACK (or NACK if unknown), de-duplicate, then run the terminator or endpoint. */
  handle(envelope: S2CSendOrRequest, receivedTimestamp: number): void {
    const kind = envelope.t === 'SEND' ? 'Terminator' : 'Endpoint';
    const target =
      envelope.t === 'SEND' ? this.terminators.get(envelope.eid) : this.endpoints.get(envelope.eid);
    if (!target) {
      const description = `The Client ${kind} [${envelope.eid}] does not exist!`;
      this.host.nack(envelope.smid, description);
      this.host.emit('error', { type: 'unknown-client-target', message: description });
      return;
    }
    this.host.ack(envelope.smid);
    if (this.smids.has(envelope.smid)) return;
    this.smids.add(envelope.smid);
    const event: MessageEvent = {
      type: envelope.t,
      data: envelope.msg,
      traceId: envelope.tid,
      messageId: envelope.smid,
      receivedTimestamp,
    };
    if (envelope.debug) event.debug = toDebugInformation(envelope.debug, receivedTimestamp);
    if (envelope.t === 'SEND') {
      try {
        (target as TerminatorRegistration).onMessage(event);
      } catch (error) {
        this.host.emit('error', {
          type: 'terminator-threw',
          message: `terminator [${envelope.eid}] threw`,
          error,
        });
      }
      return;
    }
    const reply = (t: 'RESOLVE' | 'REJECT', msg: unknown): void => {
      const replyEnvelope: C2SReply = {
        t,
        smid: envelope.smid,
        tid: envelope.tid,
        cmid: this.host.nextCmid(),
      };
      if (msg !== undefined) replyEnvelope.msg = msg;
      this.host.addReply(replyEnvelope);
    };
    let result: unknown;
    try {
      result = (target as EndpointHandler)(event);
    } catch (error) {
      reply('REJECT', rejectionMessage(error));
      return;
    }
    Promise.resolve(result).then(
      (value) => reply('RESOLVE', value),
      (error: unknown) => reply('REJECT', rejectionMessage(error)),
    );
  }

  /** Routes a requestReplyTo outcome to its terminator: RESOLVE to `onMessage`, everything else to `onReject`. */
  deliverReply(terminatorId: string, event: MessageEvent): void {
    const terminator = this.terminators.get(terminatorId);
    const callback = event.type === 'RESOLVE' ? terminator?.onMessage : terminator?.onReject;
    try {
      callback?.(event);
    } catch (error) {
      this.host.emit('error', {
        type: 'terminator-threw',
        message: `terminator [${terminatorId}] threw`,
        error,
      });
    }
  }
}
