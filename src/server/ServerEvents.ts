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

/** One envelope received or sent, as seen by message event listeners (without `msg` and `auth`). */
export interface MessageEvent {
  direction: 'in' | 'out';
  sessionId: string | undefined;
  connectionId: string;
  timestamp: number;
  /** Envelope type. */
  t: string;
  cmid?: string;
  smid?: string;
  eid?: string;
  tid?: string;
  ids?: string[];
  desc?: string;
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
