import { backoffDelay } from '../util/backoff.ts';
import type { ConnectionEvent } from './clientEvents.ts';
import type { ResolvedClientOptions } from './clientOptions.ts';
import { preconnectedWebSocketUrl, runPreconnect } from './preconnect.ts';
import { detachHandlers, MATSSOCKET_SUBPROTOCOL, type WebSocketLike } from './WebSocketLike.ts';

type Timer = ReturnType<typeof setTimeout>;

/** What {@link Connector} reports to its owner, and asks it. */
export interface ConnectorCallbacks {
  onEvent(event: ConnectionEvent): void;
  /** A WebSocket opened: it is the owner's now (its handlers are still the connector's no-ops). */
  onOpen(socket: WebSocketLike, urlIndex: number): void;
  /** `maxAttempts` consecutive attempts failed. */
  onGiveUp(attempts: number): void;
  /** The authorization value for the preconnect operation. */
  authorization(): string;
  /** The preconnect operation of an attempt failed (the attempt fails with it). */
  onPreconnectFailed(error: unknown): void;
}

/** One connection attempt: its preconnect (while it runs), then its socket (while it opens). */
interface Attempt {
  controller: AbortController | undefined;
  socket: WebSocketLike | undefined;
}

/**
 * Opens a WebSocket with failover over the URL list. Each attempt has a timeout of
 * `max(min, min(max, base × 2^round))` ms, where a round is one pass over the URLs; it covers the preconnect
 * operation (docs/protocol.md §2.1), when configured, and the WebSocket's opening. With several URLs a failed
 * attempt goes straight to the next URL during the first round; after that (and always with one URL) the next
 * attempt waits `backoffDelay(n)` with jitter.
 */
export class Connector {
  private readonly options: ResolvedClientOptions;
  private readonly callbacks: ConnectorCallbacks;
  private current: Attempt | undefined;
  private timer: Timer | undefined;
  private attempt = 0;
  private urlIndex = 0;
  private maxAttempts = 1;
  private active = false;

  constructor(options: ResolvedClientOptions, callbacks: ConnectorCallbacks) {
    this.options = options;
    this.callbacks = callbacks;
  }

  /** True while attempts are in progress or scheduled. */
  get connecting(): boolean {
    return this.active;
  }

  /** Starts connecting at URL `startIndex` (modulo the number of URLs). No-op if already connecting. */
  start(startIndex: number, maxAttempts: number): void {
    if (this.active) return;
    this.active = true;
    this.attempt = 0;
    this.maxAttempts = maxAttempts;
    this.urlIndex = startIndex % this.options.urls.length;
    this.tryNow();
  }

  /** Stops connecting: clears timers, aborts the preconnect and abandons the socket being opened. Idempotent. */
  abort(): void {
    this.active = false;
    this.clearAttempt();
  }

  private connectTimeoutMs(): number {
    const { connectTimeoutBaseMs: base, connectTimeoutMaxMs: max, connectTimeoutMinMs: min } = this.options;
    const round = Math.floor(this.attempt / this.options.urls.length);
    return Math.max(min, Math.min(max, base * Math.pow(2, Math.min(round, 30))));
  }

  private tryNow(): void {
    this.timer = undefined;
    const url = this.options.urls[this.urlIndex]!;
    const timeoutMs = this.connectTimeoutMs();
    this.callbacks.onEvent({ type: 'CONNECTING', url, attempt: this.attempt, timeoutMs });
    const attempt: Attempt = { controller: undefined, socket: undefined };
    this.current = attempt;
    const fail = (): void => {
      if (this.current !== attempt) return;
      this.clearAttempt();
      this.failed();
    };
    this.timer = setTimeout(fail, timeoutMs);
    const preconnect = this.options.preconnect;
    if (preconnect === false) {
      this.openSocket(attempt, url, fail);
      return;
    }
    const controller = new AbortController();
    attempt.controller = controller;
    const info = {
      webSocketUrl: url,
      authorization: this.callbacks.authorization(),
      signal: controller.signal,
    };
    runPreconnect(preconnect, info).then(
      () => {
        if (this.current !== attempt) return;
        attempt.controller = undefined;
        this.openSocket(attempt, preconnectedWebSocketUrl(url), fail);
      },
      (error: unknown) => {
        if (this.current !== attempt) return;
        this.callbacks.onPreconnectFailed(error);
        fail();
      },
    );
  }

  private openSocket(attempt: Attempt, url: string, fail: () => void): void {
    let socket: WebSocketLike;
    try {
      socket = new this.options.webSocket(url, MATSSOCKET_SUBPROTOCOL);
    } catch (error) {
      this.options.logger.warn({ url, err: error }, 'WebSocket constructor threw');
      if (this.timer !== undefined) clearTimeout(this.timer);
      this.timer = setTimeout(fail, 0);
      return;
    }
    attempt.socket = socket;
    detachHandlers(socket);
    socket.onopen = () => {
      if (this.current !== attempt) return;
      attempt.socket = undefined;
      this.clearAttempt();
      this.active = false;
      this.callbacks.onOpen(socket, this.urlIndex);
    };
    socket.onerror = fail;
    socket.onclose = fail;
  }

  /** Ends the current attempt, if any: its timer, its preconnect, its socket (unless it opened). */
  private clearAttempt(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const attempt = this.current;
    this.current = undefined;
    attempt?.controller?.abort();
    if (attempt?.socket) abandon(attempt.socket);
  }

  private failed(): void {
    if (!this.active) return;
    const url = this.options.urls[this.urlIndex]!;
    const urlCount = this.options.urls.length;
    this.attempt++;
    if (this.attempt >= this.maxAttempts) {
      this.active = false;
      this.callbacks.onGiveUp(this.attempt);
      return;
    }
    this.urlIndex = (this.urlIndex + 1) % urlCount;
    const quickRound = urlCount > 1 && this.attempt < urlCount;
    const delay = quickRound
      ? 0
      : backoffDelay(this.attempt - (urlCount > 1 ? urlCount : 1), this.options.connectBackoff);
    this.callbacks.onEvent({ type: 'WAITING', url, attempt: this.attempt - 1, nextAttemptInMs: delay });
    this.timer = setTimeout(() => this.tryNow(), delay);
  }
}

/** Closes a socket nobody wants any more, whatever state it is in, without letting its events through. */
export function abandon(socket: WebSocketLike): void {
  detachHandlers(socket);
  try {
    socket.close(4000, 'WebSocket connect aborted');
  } catch {
    // Closing a socket that never opened may throw in some implementations; it is gone either way.
  }
}
