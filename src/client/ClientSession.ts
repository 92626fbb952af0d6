import {
  clientActionOnClose,
  CloseCode,
  closeCodeName,
  truncateCloseReason,
} from '../protocol/closeCodes.ts';
import { encodeFrame } from '../protocol/encodeFrame.ts';
import type { C2SEnvelope, C2SHello, C2SSub, S2CEnvelope, S2CWelcome } from '../protocol/envelopes.ts';
import { parseServerFrame } from '../protocol/parseServerFrame.ts';
import { ClientAuthorization } from './ClientAuthorization.ts';
import type {
  AuthorizationRequiredEvent,
  ConnectionEvent,
  ConnectionState,
  MatsSocketClientEvents,
} from './clientEvents.ts';
import type { ResolvedClientOptions } from './clientOptions.ts';
import { abandon, Connector } from './Connector.ts';
import { PageUnloadHook } from './PageUnloadHook.ts';
import type { Tracked } from './Outbox.ts';
import { Pipeline, type PipelineItem } from './Pipeline.ts';
import { monotonicNow } from './timing.ts';
import { backoffDelay } from '../util/backoff.ts';
import { detachHandlers, type WebSocketCloseEventLike, type WebSocketLike } from './WebSocketLike.ts';

type Timer = ReturnType<typeof setTimeout>;

/** Library name and version, sent in HELLO's `clv`. */
export const CLIENT_LIB_NAME_AND_VERSION = 'MatsSocket.ts,0.1.0';

function userAgent(): string {
  const g = globalThis as { navigator?: { userAgent?: string }; process?: { versions?: { node?: string } } };
  if (g.navigator?.userAgent) return g.navigator.userAgent;
  if (g.process?.versions?.node) return `Node.js ${g.process.versions.node}`;
  return 'Unknown';
}

/** What {@link ClientSession} needs from the client that owns it. */
export interface ClientSessionHost {
  emit<K extends keyof MatsSocketClientEvents>(name: K, event: MatsSocketClientEvents[K]): void;
  /** The SUBs to send with HELLO on connection `connectionId`. */
  subsForHello(connectionId: number): C2SSub[];
  /** Every server envelope except WELCOME, in frame order. */
  onEnvelope(envelope: S2CEnvelope, receivedTimestamp: number): void;
  /** WELCOME arrived: start pinging, resend what the server may lack. */
  onEstablished(): void;
  /** The connection is gone (the session may live on). */
  onConnectionGone(): void;
  /** The session is gone: fail everything outstanding. */
  onSessionEnded(): void;
  outstandingInitiations(): number;
  /** A pipeline frame is about to be written: enqueue what may ride on it (pending acknowledgements). */
  beforePipelineFrame(): void;
}

/**
 * The client's connection and session state machine (docs/protocol.md sections 6, 7 and 8.1-8.2): connects lazily with
 * failover, sends HELLO (with `sid` to resume) and the pipelines, holds sending while authorization is missing,
 * reacts to close codes (reconnect, wait for a new message after 4003, or end the session), and tears down.
 */
export class ClientSession {
  readonly auth: ClientAuthorization;
  readonly pipeline: Pipeline;
  private readonly options: ResolvedClientOptions;
  private readonly host: ClientSessionHost;
  private readonly connector: Connector;

  private _state: ConnectionState = 'NO_SESSION';
  private _sessionId: string | undefined;
  private _connectionId = 0;
  /** An information-bearing message or subscription wants a session (the official client's "matsSocketOpen"). */
  private wanted = false;
  /** After 4003: reconnect only when a new message is enqueued. */
  private awaitingNewMessage = false;
  /** Send even with empty queues: HELLO after (re)connecting, AUTH after REAUTH. */
  private forceSend = false;
  private socket: WebSocketLike | undefined;
  private connectedUrlIndex = 0;
  private nextUrlIndex = 0;
  private helloSent = false;
  private helloSid: string | undefined;
  private reconnectTimer: Timer | undefined;
  /** Connections lost in a row without one that stayed established for `stableConnectionMs`. */
  private unstableLosses = 0;
  /** `monotonicNow()` at this connection's WELCOME, if it got one. */
  private establishedAt: number | undefined;
  private closing: Promise<void> | undefined;
  private readonly unloadHook: PageUnloadHook;

  constructor(options: ResolvedClientOptions, host: ClientSessionHost) {
    this.options = options;
    this.host = host;
    this.auth = new ClientAuthorization({
      onMissingCallback: () =>
        this.closeLocally("From Client: Need new authorization, but missing 'authorizationExpiredCallback'."),
      onCallbackError: (error) =>
        host.emit('error', { type: 'callback-threw', message: 'the authorization callback threw', error }),
    });
    this.pipeline = new Pipeline(options.pipelineDelayMs, () => this.evaluate(), options.pipelineMaxDelayMs);
    this.connector = new Connector(options, {
      onEvent: (event) => this.emitConnection(event),
      onOpen: (socket, urlIndex) => this.onOpen(socket, urlIndex),
      onGiveUp: (attempts) =>
        this.closeLocally(
          `Trying to create WebSocket: Too many consecutive connection attempts [${attempts}]`,
        ),
      authorization: () => this.auth.value ?? '',
      onPreconnectFailed: (error) =>
        host.emit('error', {
          type: 'preconnect-failed',
          message: error instanceof Error ? error.message : 'the preconnect operation failed',
          error,
        }),
    });
    this.unloadHook = new PageUnloadHook(() => void this.close('page unloaded'));
  }

  get state(): ConnectionState {
    return this._state;
  }

  get sessionId(): string | undefined {
    return this._sessionId;
  }

  /** The id of the current (or last) connection; 0 before the first. */
  get connectionId(): number {
    return this._connectionId;
  }

  /** The connection on which HELLO went out, if the current one has: SUB/UNSUB can go at once then. */
  get helloConnectionId(): number | undefined {
    return this.helloSent ? this._connectionId : undefined;
  }

  get currentUrl(): string {
    return this.options.urls[this.connectedUrlIndex]!;
  }

  /**
   * True while a WebSocket is open (from its `open` until it closes or is dropped), whether or not WELCOME has
   * arrived yet: the official client's `connected`. After 4003 DISCONNECT it is false until a new connection opens.
   */
  get connected(): boolean {
    return this.socket !== undefined;
  }

  /**
   * Something needs a session: start (or resume) one when the pipeline runs. `force` sends HELLO even with nothing
   * queued (a subscription).
   */
  want(force = false): void {
    this.wanted = true;
    this.awaitingNewMessage = false;
    if (force) {
      this.forceSend = true;
      this.pipeline.schedule();
    }
  }

  /** Sets the authorization, and sends at once (an AUTH if nothing else) when it answers a REAUTH. */
  setAuthorization(value: string, expiresAt: number, roomForLatencyMs: number): void {
    if (this.auth.set(value, expiresAt, roomForLatencyMs)) this.forceSend = true;
    this.evaluate();
  }

  setAuthorizationCallback(callback: (event: AuthorizationRequiredEvent) => void): void {
    this.auth.setCallback(callback);
    this.evaluate();
  }

  /** Sends what is queued, connecting first if needed; holds everything while authorization is unusable. */
  evaluate(): void {
    this.pipeline.cancelTimer();
    if (!this.wanted) return;
    if (this.pipeline.empty && !this.forceSend) return;
    if (!this.auth.usable()) return;
    const socket = this.socket;
    if (!socket) {
      if (!this.connector.connecting && !this.awaitingNewMessage && this.reconnectTimer === undefined) {
        const max = this.options.maxConnectionAttempts ?? (this._sessionId === undefined ? 60 : 5760);
        this.connector.start(this.nextUrlIndex, max);
      }
      return;
    }
    const authorization = this.auth.value!;
    if (!this.helloSent) {
      const hello: C2SHello = {
        t: 'HELLO',
        clv: `${CLIENT_LIB_NAME_AND_VERSION}; User-Agent: ${userAgent()}`,
        an: this.options.appName,
        av: this.options.appVersion,
        auth: authorization,
      };
      if (this._sessionId !== undefined) hello.sid = this._sessionId;
      this.helloSid = this._sessionId;
      this.pipeline.prependPre([hello, ...this.host.subsForHello(this._connectionId)]);
      this.helloSent = true;
      this.auth.markSent();
    }
    if (this.auth.changedSinceSent) {
      this.pipeline.attachAuthorization(authorization);
      this.auth.markSent();
    }
    this.forceSend = false;
    this.host.beforePipelineFrame();
    const { pre, items } = this.pipeline.drain();
    // The pre-pipeline (HELLO, SUB, UNSUB) is its own frame, ahead of messages that might trigger a publish.
    if (pre.length > 0)
      this.writeFrame(
        socket,
        pre.map((envelope) => ({ envelope })),
      );
    if (items.length > 0) this.writeFrame(socket, items);
  }

  /** Writes a PING directly (not through the pipeline, so it is not held), if the session is established. */
  sendPing(pingId: string): void {
    const socket = this.socket;
    if (!socket || this._state !== 'SESSION_ESTABLISHED') return;
    const ping: C2SEnvelope = { t: 'PING', x: pingId };
    try {
      socket.send(encodeFrame([ping]));
    } catch (error) {
      this.host.emit('error', { type: 'send-failed', message: 'writing a PING failed', error });
    }
  }

  /** See `MatsSocketClient.close()`. */
  close(reason: string): Promise<void> {
    const socket = this.socket;
    const active = socket !== undefined || this.wanted || this._sessionId !== undefined;
    // Idempotent: with nothing (new) to close, return the close in progress, if any.
    if (!active && this._state === 'NO_SESSION') return this.closing ?? Promise.resolve();
    let done = Promise.resolve();
    if (socket) {
      this.dropSocket();
      done = waitForClose(socket, this.options.closeTimeoutMs);
      socket.close(CloseCode.CLOSE_SESSION, truncateCloseReason(`From client: ${reason}`));
    }
    const sessionId = this._sessionId;
    this.end('client', CloseCode.CLOSE_SESSION, reason);
    if (sessionId !== undefined) this.closeOutOfBand(sessionId);
    const closing = Promise.all([done, this.closing]).then(() => {});
    void closing.finally(() => {
      if (this.closing === closing) this.closing = undefined;
    });
    this.closing = closing;
    return closing;
  }

  /** The out-of-band close of docs/protocol.md 8.16, per the `outOfBandClose` option. */
  private closeOutOfBand(sessionId: string): void {
    const option = this.options.outOfBandClose;
    const webSocketUrl = this.currentUrl;
    try {
      if (typeof option === 'function') option({ webSocketUrl, sessionId });
      else if (option) {
        const navigator = (globalThis as { navigator?: { sendBeacon?: (url: string) => boolean } }).navigator;
        // Replace-first, as the official clients do: ws -> http, wss -> https.
        const url = `${webSocketUrl.replace('ws', 'http')}/close_session?session_id=${encodeURIComponent(sessionId)}`;
        navigator?.sendBeacon?.(url);
      }
    } catch (error) {
      this.host.emit('error', {
        type: 'out-of-band-close-failed',
        message: 'the out-of-band close failed',
        error,
      });
    }
  }

  /** See `MatsSocketClient.reconnect()`. Returns false if there is no open connection. */
  dropConnection(reason: string, disconnect: boolean): boolean {
    const socket = this.socket;
    if (!socket) return false;
    const code = disconnect ? CloseCode.DISCONNECT : CloseCode.RECONNECT;
    this.dropSocket();
    detachHandlers(socket);
    socket.close(code, truncateCloseReason(reason));
    this.connectionLost(code, reason);
    return true;
  }

  private emitConnection(event: ConnectionEvent): void {
    const states: Partial<Record<ConnectionEvent['type'], ConnectionState>> = {
      CONNECTING: 'CONNECTING',
      WAITING: 'WAITING',
      CONNECTED: 'CONNECTED',
      SESSION_ESTABLISHED: 'SESSION_ESTABLISHED',
      LOST_CONNECTION: 'DISCONNECTED',
      SESSION_CLOSED: 'NO_SESSION',
    };
    this._state = states[event.type] ?? this._state;
    this.options.logger.debug({ event }, 'connection event');
    this.host.emit('connection', event);
  }

  private writeFrame(socket: WebSocketLike, items: readonly PipelineItem[]): void {
    const tracked = items.map((item) => item.tracked).filter((t): t is Tracked => t !== undefined);
    for (const t of tracked) {
      t.queued = false;
      t.sentOnConnection = this._connectionId;
    }
    try {
      socket.send(encodeFrame(items.map((item) => item.envelope)));
    } catch (error) {
      // The connection is going down; its close event follows, and the messages are resent after WELCOME.
      for (const t of tracked) t.sentOnConnection = undefined;
      this.host.emit('error', {
        type: 'send-failed',
        message: 'writing a frame to the WebSocket failed',
        error,
      });
    }
  }

  private onOpen(socket: WebSocketLike, urlIndex: number): void {
    if (!this.wanted) {
      abandon(socket);
      return;
    }
    this.socket = socket;
    if (this.options.closeOnPageUnload) this.unloadHook.register();
    this._connectionId++;
    this.connectedUrlIndex = urlIndex;
    this.helloSent = false;
    socket.onmessage = (event) => this.onMessage(socket, event.data);
    socket.onclose = (event) => this.onClose(socket, event);
    socket.onerror = () => {
      if (this.socket === socket) this.emitConnection({ type: 'CONNECTION_ERROR', url: this.currentUrl });
    };
    this.emitConnection({ type: 'CONNECTED', url: this.currentUrl });
    this.forceSend = true;
    this.evaluate();
  }

  /** Forgets the current socket (without closing it) and what belonged to its connection. */
  private dropSocket(): void {
    this.socket = undefined;
    this.helloSent = false;
    this.pipeline.clearPre();
    this.host.onConnectionGone();
  }

  private onClose(socket: WebSocketLike, event: WebSocketCloseEventLike): void {
    if (socket !== this.socket) return;
    this.dropSocket();
    detachHandlers(socket);
    if (clientActionOnClose(event.code) === 'closeSession') this.end('server', event.code, event.reason);
    else this.connectionLost(event.code, event.reason);
  }

  private connectionLost(code: number, reason: string): void {
    this.forceSend = true;
    this.nextUrlIndex = (this.connectedUrlIndex + 1) % this.options.urls.length;
    const url = this.currentUrl;
    if (clientActionOnClose(code) === 'awaitNewMessage') {
      this.awaitingNewMessage = true;
      this.emitConnection({ type: 'LOST_CONNECTION', url, code, reason });
      return;
    }
    const delay = this.reconnectDelay();
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.evaluate();
    }, delay);
    this.emitConnection({ type: 'LOST_CONNECTION', url, code, reason, reconnectInMs: delay });
  }

  /**
   * A first loss reconnects after the short random delay; losses in a row back off (`connectBackoff`), so a server
   * that accepts connections and drops them at once (overloaded, a bad deploy) is not hammered and outstanding
   * messages do not spend their attempts in seconds. A connection that stayed established for
   * `stableConnectionMs` starts the count again.
   */
  private reconnectDelay(): number {
    const lived = this.establishedAt === undefined ? 0 : monotonicNow() - this.establishedAt;
    this.establishedAt = undefined;
    if (lived >= this.options.stableConnectionMs) this.unstableLosses = 0;
    const { reconnectDelayMinMs: min, reconnectDelayMaxMs: max } = this.options;
    const quick = Math.round(min + Math.random() * (max - min));
    const losses = this.unstableLosses++;
    return losses === 0 ? quick : Math.max(quick, backoffDelay(losses - 1, this.options.connectBackoff));
  }

  /** A fatal local condition: close the WebSocket (if any) with 4000 and the session with a local 1008. */
  private closeLocally(reason: string): void {
    const socket = this.socket;
    if (socket) {
      this.dropSocket();
      detachHandlers(socket);
      socket.close(CloseCode.CLOSE_SESSION, truncateCloseReason(reason));
    }
    this.host.emit('error', { type: 'session-closed-locally', message: reason });
    this.end('local', CloseCode.VIOLATED_POLICY, reason);
  }

  /** Tears the session down; the host fails everything outstanding with SESSION_CLOSED. */
  private end(initiatedBy: 'client' | 'server' | 'local', code: number, reason: string): void {
    const outstandingInitiations = this.host.outstandingInitiations();
    this._sessionId = undefined;
    this.unstableLosses = 0;
    this.establishedAt = undefined;
    this.wanted = false;
    this.awaitingNewMessage = false;
    this.forceSend = false;
    this.helloSent = false;
    this.connector.abort();
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.pipeline.clear();
    this.unloadHook.deregister();
    this.host.onSessionEnded();
    this.emitConnection({ type: 'SESSION_CLOSED', code, reason, initiatedBy });
    if (initiatedBy !== 'client') {
      this.host.emit('session:closed', {
        code,
        codeName: closeCodeName(code),
        reason,
        outstandingInitiations,
      });
    }
  }

  private onMessage(socket: WebSocketLike, data: unknown): void {
    if (socket !== this.socket) return;
    const receivedTimestamp = Date.now();
    if (typeof data !== 'string') {
      this.host.emit('error', { type: 'bad-frame', message: 'the server sent a non-text frame: ignored' });
      return;
    }
    let envelopes: S2CEnvelope[];
    try {
      const parsed = parseServerFrame(data);
      envelopes = parsed.envelopes;
      for (const problem of parsed.problems)
        this.host.emit('error', { type: 'bad-envelope', message: problem });
    } catch (error) {
      this.host.emit('error', {
        type: 'bad-frame',
        message: 'the server sent an unparsable frame: ignored',
        error,
      });
      return;
    }
    for (const envelope of envelopes) {
      // A handler may have closed or dropped the connection: the rest of the frame belongs to no one.
      if (socket !== this.socket) return;
      try {
        if (envelope.t === 'WELCOME') this.onWelcome(envelope);
        else this.host.onEnvelope(envelope, receivedTimestamp);
      } catch (error) {
        this.host.emit('error', { type: 'envelope-failed', message: `handling ${envelope.t} failed`, error });
      }
    }
  }

  private onWelcome(envelope: S2CWelcome): void {
    const resumed = this.helloSid !== undefined && this.helloSid === envelope.sid;
    this._sessionId = envelope.sid;
    this.establishedAt = monotonicNow();
    this.emitConnection({
      type: 'SESSION_ESTABLISHED',
      url: this.currentUrl,
      sessionId: envelope.sid,
      resumed,
    });
    this.host.onEstablished();
  }
}

/** Resolves when `socket` has closed, or after `timeoutMs` (then it is terminated where that exists). */
function waitForClose(socket: WebSocketLike, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    detachHandlers(socket);
    const timer = setTimeout(() => {
      (socket as { terminate?: () => void }).terminate?.();
      resolve();
    }, timeoutMs);
    socket.onclose = () => {
      clearTimeout(timer);
      resolve();
    };
  });
}
