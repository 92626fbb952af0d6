import type { Logger } from '../logging.ts';

/** How a session was established on a node. */
export type SessionEstablishedType = 'NEW' | 'RECONNECT';

/** Why a session left a node: terminated (CLOSE), deregistered (still resumable) or timed out. */
export type SessionRemovedType = 'CLOSE' | 'DEREGISTER' | 'TIMEOUT';

export interface SessionEstablishedEvent {
  type: SessionEstablishedType;
  sessionId: string;
  userId: string;
  connectionId: string;
  appName: string;
  appVersion: string;
  clientLib: string;
  nodeName: string;
}

export interface SessionRemovedEvent {
  type: SessionRemovedType;
  sessionId: string;
  /** Absent when the session was removed without a local connection (timeout, remote close). */
  userId?: string;
  connectionId?: string;
  /** The close code of the connection, if it ended with one. */
  closeCode?: number;
  reason?: string;
}

/** What the incoming handler did with a client SEND/REQUEST (the reference's `IncomingResolution`). */
export type IncomingResolution = 'EXCEPTION' | 'NO_ACTION' | 'DENY' | 'RESOLVE' | 'REJECT' | 'FORWARD';

/**
 * One envelope received or sent, as seen by message event listeners and `lastEnvelopes` (without `msg` and
 * `auth`). The reference's `MatsSocketEnvelopeWithMetaDto` carries the same metadata; its field names are given
 * in brackets. A client SEND/REQUEST is reported once its incoming handler has run (with `resolution`), every
 * other envelope when it is received or written.
 */
export interface MessageEvent {
  /** `in`: received from the client; `out`: written to it [dir C2S/S2C]. */
  direction: 'in' | 'out';
  sessionId: string | undefined;
  connectionId: string;
  /** When it was received from, or written to, the WebSocket; epoch ms [ts]. */
  timestamp: number;
  /** The node that received or wrote it [nn]. */
  nodeName: string;
  /** Envelope type. */
  t: string;
  cmid?: string;
  smid?: string;
  eid?: string;
  tid?: string;
  ids?: string[];
  desc?: string;
  /**
   * On an answer (WELCOME, PONG, ACK/NACK/RETRY, RESOLVE/REJECT, ACK2, SUB_OK/SUB_LOST/SUB_NO_AUTH): when this
   * node received what it answers (HELLO, PING, SEND/REQUEST/RESOLVE/REJECT, ACK/NACK, SUB), epoch ms; for an
   * `ids` batch, the earliest [icts].
   */
  incomingTimestamp?: number;
  /** On an answer: ms from that receipt to this write, fractional [rttm]. */
  roundTripMs?: number;
  /** On a client SEND/REQUEST that reached its incoming handler: what the handler did [ir]. */
  resolution?: IncomingResolution;
  /** On a forwarded client SEND/REQUEST: the Mats endpoint it was forwarded to (the first) [fmeid]. */
  forwardedTo?: string;
  /** On a client SEND/REQUEST that reached its incoming handler: the handler's run time, ms, fractional [rm]. */
  resolutionMs?: number;
  /** On a server-initiated SEND/REQUEST/PUB: when it was created, epoch ms [ints]. */
  initiatedTimestamp?: number;
  /** On a server-initiated SEND/REQUEST/PUB: the node that created it [innn]. */
  initiatedNodeName?: string;
}

/** A dead-lettered outbox message (BR-2). */
export interface DeadLetterEvent {
  sessionId: string;
  smids: string[];
  reason: string;
  description?: string;
}

export interface ServerEventMap {
  sessionEstablished: SessionEstablishedEvent;
  sessionRemoved: SessionRemovedEvent;
  message: MessageEvent;
  deadLetter: DeadLetterEvent;
}

type Listener<E> = (event: E) => void;

/**
 * Typed listener sets. Listeners run synchronously; a throwing listener is logged and never breaks the server.
 */
export class ServerEvents {
  readonly #listeners: { [K in keyof ServerEventMap]: Set<Listener<ServerEventMap[K]>> } = {
    sessionEstablished: new Set(),
    sessionRemoved: new Set(),
    message: new Set(),
    deadLetter: new Set(),
  };
  readonly #logger: Logger;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  on<K extends keyof ServerEventMap>(event: K, listener: Listener<ServerEventMap[K]>): () => void {
    this.#listeners[event].add(listener);
    return () => this.#listeners[event].delete(listener);
  }

  hasListeners(event: keyof ServerEventMap): boolean {
    return this.#listeners[event].size > 0;
  }

  emit<K extends keyof ServerEventMap>(event: K, payload: ServerEventMap[K]): void {
    for (const listener of this.#listeners[event]) {
      try {
        listener(payload);
      } catch (err) {
        this.#logger.warn({ err, event }, 'a MatsSocket event listener threw');
      }
    }
  }
}
