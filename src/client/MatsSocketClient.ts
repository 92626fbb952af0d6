import type { S2CEnvelope } from '../protocol/envelopes.ts';
import { AckBatcher } from './AckBatcher.ts';
import { ClientInbox, type EndpointHandler } from './ClientInbox.ts';
import { ClientSession } from './ClientSession.ts';
import type {
  AuthorizationRequiredEvent,
  ConnectionState,
  InitiationProcessedEvent,
  MatsSocketClientEvents,
  MessageEvent,
  PingPong,
  ReceivedEvent,
} from './clientEvents.ts';
import { ClientUsageError, ReceivedError, ReplyError } from './clientErrors.ts';
import {
  resolveClientOptions,
  type MatsSocketClientOptions,
  type RequestOptions,
  type RequestReplyToOptions,
  type ResolvedClientOptions,
  type SendOptions,
} from './clientOptions.ts';
import { Outbox, type Initiation, type PendingRequest } from './Outbox.ts';
import { Pinger } from './Pinger.ts';
import { monotonicNow } from './timing.ts';
import { Subscriptions } from './Subscriptions.ts';
import { TypedEmitter, type Listener } from './TypedEmitter.ts';

export { CLIENT_LIB_NAME_AND_VERSION } from './ClientSession.ts';

/**
 * A MatsSocket client: one session with a MatsSocket server, over one WebSocket at a time, with reliable
 * SEND/REQUEST (outbox, resend after reconnect, RETRY), server-initiated SEND/REQUEST (inbox de-duplication),
 * topics, in-band authorization and failover over several URLs. Wire behaviour and timing follow the official
 * JavaScript client (docs/protocol.md, section 11).
 *
 * The client connects lazily: on the first SEND/REQUEST or subscription, once an authorization is set. It runs in
 * browsers and in Node (give `ws`'s WebSocket as the `webSocket` option).
 *
 * ```ts
 * const client = new MatsSocketClient({ appName: 'App', appVersion: '1.0', urls, webSocket: WebSocket });
 * client.setCurrentAuthorization('Bearer ...', Date.now() + 3_600_000, 30_000);
 * const reply = await client.request('Endpoint.id', 'traceId', { q: 1 });
 * await client.close('done');
 * ```
 */
export class MatsSocketClient {
  private readonly options: ResolvedClientOptions;
  private readonly emitter: TypedEmitter<MatsSocketClientEvents>;
  private readonly session: ClientSession;
  private readonly outbox: Outbox;
  private readonly inbox: ClientInbox;
  private readonly subscriptions: Subscriptions;
  private readonly acks: AckBatcher;
  private readonly pinger: Pinger;
  private firstEstablishedAt: number | undefined;

  constructor(options: MatsSocketClientOptions) {
    this.options = resolveClientOptions(options);
    const log = this.options.logger;
    this.emitter = new TypedEmitter<MatsSocketClientEvents>((name, error) => {
      if (name === 'error') log.error({ err: error }, 'an error listener threw');
      else
        this.emit('error', { type: 'listener-threw', message: `a '${String(name)}' listener threw`, error });
    });
    const emit = <K extends keyof MatsSocketClientEvents>(name: K, event: MatsSocketClientEvents[K]): void =>
      this.emit(name, event);
    this.session = new ClientSession(this.options, {
      emit,
      subsForHello: (connectionId) => this.subscriptions.subsForHello(connectionId),
      onEnvelope: (envelope, receivedTimestamp) => this.handleEnvelope(envelope, receivedTimestamp),
      onEstablished: () => {
        this.firstEstablishedAt ??= monotonicNow();
        this.pinger.start();
        this.outbox.retransmit(Date.now());
      },
      onConnectionGone: () => this.pinger.stop(),
      beforePipelineFrame: () => this.acks.flushNow(),
      onSessionEnded: () => {
        this.pinger.stop();
        this.acks.clear();
        this.inbox.clear();
        this.outbox.resetDebugState();
        this.outbox.failAll(Date.now());
      },
      outstandingInitiations: () => this.outbox.outstandingInitiations,
    });
    const pipeline = this.session.pipeline;
    this.outbox = new Outbox({
      options: this.options,
      enqueue: (envelope, tracked) => pipeline.enqueue(envelope, tracked),
      dequeue: (tracked) => pipeline.remove(tracked),
      flush: () => this.flush(),
      ack2Later: (cmids) => this.acks.ack2(cmids),
      emit,
      deliverToTerminator: (terminatorId, event) => this.inbox.deliverReply(terminatorId, event),
      firstSessionEstablishedAt: () => this.firstEstablishedAt,
      connectionId: () => this.session.connectionId,
    });
    this.inbox = new ClientInbox(
      {
        ack: (smid) => this.acks.ack(smid),
        nack: (smid, description) => this.acks.nack(smid, description),
        nextCmid: () => this.outbox.nextCmid(),
        addReply: (envelope) => this.outbox.addReply(envelope),
        emit,
      },
      () => {
        // docs/protocol.md 8.14: hold the pipeline now, so the RESOLVE goes out carrying the new authorization.
        this.session.auth.request('REAUTHENTICATE', true);
        return {};
      },
    );
    this.subscriptions = new Subscriptions(emit);
    const { ackDelayMs, ack2DelayMs, ackBatchMaxPending: maxPending } = this.options;
    this.acks = new AckBatcher({ ackDelayMs, ack2DelayMs, maxPending }, (envelope) =>
      pipeline.enqueue(envelope),
    );
    this.pinger = new Pinger(
      {
        initialDelayMinMs: this.options.initialPingDelayMinMs,
        initialDelayMaxMs: this.options.initialPingDelayMaxMs,
        intervalMs: this.options.pingIntervalMs,
        historySize: this.options.pingHistorySize,
        pongTimeoutMs: this.options.pongTimeoutMs,
      },
      (pingId) => this.session.sendPing(pingId),
      (pingPong) => this.emit('ping:pong', pingPong),
      (silentForMs) =>
        this.session.dropConnection(
          `From client: no PONG for ${silentForMs} ms: the server is silent`,
          false,
        ),
    );
  }

  // ---- Events and state ----------------------------------------------------------------------------------

  /** Adds an event listener; returns a function that removes it. */
  on<K extends keyof MatsSocketClientEvents>(
    name: K,
    listener: Listener<MatsSocketClientEvents[K]>,
  ): () => void {
    return this.emitter.on(name, listener);
  }

  /** Adds an event listener that runs once. */
  once<K extends keyof MatsSocketClientEvents>(
    name: K,
    listener: Listener<MatsSocketClientEvents[K]>,
  ): () => void {
    return this.emitter.once(name, listener);
  }

  off<K extends keyof MatsSocketClientEvents>(name: K, listener: Listener<MatsSocketClientEvents[K]>): void {
    this.emitter.off(name, listener);
  }

  /** The connection/session state. */
  get state(): ConnectionState {
    return this.session.state;
  }

  /**
   * True while a WebSocket is open, before or after WELCOME (the official client's `connected`): false while
   * connecting, after a lost connection (also after 4003 DISCONNECT, until a new message reconnects), and without
   * a session.
   */
  get connected(): boolean {
    return this.session.connected;
  }

  /** The session id from WELCOME; `undefined` without a session. */
  get sessionId(): string | undefined {
    return this.session.sessionId;
  }

  /** The URL of the current connection (or of the last one). */
  get currentUrl(): string {
    return this.session.currentUrl;
  }

  /** The last PINGs with their round-trip times (100 by default), oldest first. */
  get pings(): readonly PingPong[] {
    return this.pinger.pings;
  }

  /** The last processed SENDs/REQUESTs with timings (10 by default), oldest first. */
  get initiations(): readonly InitiationProcessedEvent[] {
    return this.outbox.initiationHistory;
  }

  /** SEND/REQUESTs not yet ACKed or NACKed. */
  get outstandingInitiations(): number {
    return this.outbox.outstandingInitiations;
  }

  // ---- Authorization -------------------------------------------------------------------------------------

  /**
   * Sets the authorization value sent to the server (on HELLO, then piggy-backed on the next frame, or as AUTH).
   * @param value the authorization, e.g. a bearer token, as the server's authentication plugin expects it.
   * @param expiresAt when it expires, epoch ms; -1 for never. @default -1
   * @param roomForLatencyMs the client asks for a new value this many ms before `expiresAt`. @default 30000
   */
  setCurrentAuthorization(value: string, expiresAt = -1, roomForLatencyMs = 30_000): void {
    if (typeof value !== 'string') throw new ClientUsageError('authorization value must be a string');
    this.session.setAuthorization(value, expiresAt, roomForLatencyMs);
  }

  /**
   * Sets the callback the client calls when it needs a new authorization: none set yet, the current one is about
   * to expire (`expiresAt - roomForLatencyMs`), or the server sent REAUTH. It is called once per need; answer by
   * calling {@link setCurrentAuthorization}. Until then the client sends nothing but PINGs.
   */
  setAuthorizationExpiredCallback(callback: (event: AuthorizationRequiredEvent) => void): void {
    if (typeof callback !== 'function')
      throw new ClientUsageError('the authorization callback must be a function');
    this.session.setAuthorizationCallback(callback);
  }

  // ---- Receivers and topics ------------------------------------------------------------------------------

  /**
   * Registers a client terminator for server SENDs, and for replies routed to it by {@link requestReplyTo}:
   * RESOLVE goes to `onMessage`, REJECT (and TIMEOUT, SESSION_CLOSED, ...) to `onReject`.
   */
  terminator(
    terminatorId: string,
    onMessage: (event: MessageEvent) => void,
    onReject?: (event: MessageEvent) => void,
  ): void {
    this.inbox.addTerminator(terminatorId, { onMessage, onReject });
  }

  /** Registers a client endpoint for server REQUESTs: its return value (or promise) RESOLVEs, a throw REJECTs. */
  endpoint(endpointId: string, handler: EndpointHandler): void {
    this.inbox.addEndpoint(endpointId, handler);
  }

  /**
   * Subscribes to a topic. The subscription is sent in HELLO, or at once when a session is up, and re-sent on every
   * reconnect with the last PUB smid seen so the server can replay what was missed. Starts a session if there is
   * none. Returns a function that unsubscribes this listener.
   */
  subscribe(topicId: string, listener: (event: MessageEvent) => void): () => void {
    const sub = this.subscriptions.add(topicId, listener, this.session.helloConnectionId);
    if (sub) this.session.pipeline.enqueuePre(sub);
    else if (this.session.helloConnectionId === undefined) this.session.want(true);
    return () => this.unsubscribe(topicId, listener);
  }

  /** Removes a topic listener; the last one's removal sends UNSUB. */
  unsubscribe(topicId: string, listener: (event: MessageEvent) => void): void {
    if (this.subscriptions.remove(topicId, listener, this.session.helloConnectionId)) {
      this.session.pipeline.enqueuePre({ t: 'UNSUB', eid: topicId });
    }
  }

  // ---- Sending -------------------------------------------------------------------------------------------

  /**
   * Fire-and-forget SEND to a server endpoint. Resolves when the server ACKs it; rejects with
   * {@link ReceivedError} on NACK (code CLIENT_NACKED), or CLIENT_SESSION_CLOSED / CLIENT_ATTEMPTS_EXHAUSTED.
   */
  send(
    endpointId: string,
    traceId: string,
    message?: unknown,
    options?: SendOptions,
  ): Promise<ReceivedEvent> {
    return new Promise((resolve, reject) => {
      this.initiate('SEND', endpointId, traceId, message, options?.debug, {
        onAck: resolve,
        onNack: (event) => reject(new ReceivedError(event)),
      });
    });
  }

  /**
   * REQUEST to a server endpoint. Resolves with the RESOLVE; rejects with {@link ReplyError} on REJECT (code
   * CLIENT_REJECTED, `event.data` is the message), NACK, timeout, session close or exhausted attempts.
   */
  request<R = unknown>(
    endpointId: string,
    traceId: string,
    message?: unknown,
    options?: RequestOptions,
  ): Promise<MessageEvent<R>> {
    const timeout = this.timeoutOf(options?.timeout);
    return new Promise((resolve, reject) => {
      const request = {
        resolve: (event: MessageEvent) => resolve(event as MessageEvent<R>),
        reject: (event: MessageEvent, description?: string) => reject(new ReplyError(event, description)),
      };
      const callbacks = { onAck: options?.ackCallback, onNack: options?.nackCallback };
      this.initiate('REQUEST', endpointId, traceId, message, options?.debug, callbacks, request, timeout);
    });
  }

  /**
   * REQUEST whose reply goes to the local terminator `replyToTerminatorId`, with `correlationInformation` (kept
   * locally, never sent) on the reply event. Resolves on ACK, rejects with {@link ReceivedError} like `send()`.
   */
  requestReplyTo(
    endpointId: string,
    traceId: string,
    message: unknown,
    replyToTerminatorId: string,
    correlationInformation?: unknown,
    options?: RequestReplyToOptions,
  ): Promise<ReceivedEvent> {
    if (!this.inbox.terminator(replyToTerminatorId)) {
      throw new ClientUsageError(`the reply terminator [${replyToTerminatorId}] is not registered`);
    }
    const timeout = this.timeoutOf(options?.timeout);
    return new Promise((resolve, reject) => {
      const callbacks = {
        onAck: resolve,
        onNack: (event: ReceivedEvent) => reject(new ReceivedError(event)),
      };
      const request = { replyToTerminatorId, correlationInformation };
      this.initiate(
        'REQUEST_REPLY_TO',
        endpointId,
        traceId,
        message,
        options?.debug,
        callbacks,
        request,
        timeout,
      );
    });
  }

  /** Sends whatever is pipelined now instead of after the debounce (unless authorization is missing). */
  flush(): void {
    this.session.evaluate();
  }

  // ---- Closing -------------------------------------------------------------------------------------------

  /**
   * Closes the session: the WebSocket is closed with 4000 "From client: <reason>", so the server terminates the
   * session, and everything outstanding is rejected with CLIENT_SESSION_CLOSED. The client stays usable: a new
   * message starts a new session. Resolves when the WebSocket has closed (or after `closeTimeoutMs`). Calling it
   * again while nothing new was started returns the same promise.
   */
  close(reason = 'closed by application'): Promise<void> {
    return this.session.close(reason);
  }

  /**
   * Drops the connection as if it were lost (meant for tests): closes it with 4002 RECONNECT, or with 4003
   * DISCONNECT when `disconnect` is true (then the client reconnects only when a new message is enqueued).
   */
  reconnect(reason: string, disconnect = false): void {
    if (!this.session.dropConnection(reason, disconnect)) {
      throw new ClientUsageError('there is no open WebSocket to close');
    }
  }

  // ---- Internals -----------------------------------------------------------------------------------------

  private emit<K extends keyof MatsSocketClientEvents>(name: K, event: MatsSocketClientEvents[K]): void {
    if (name === 'error' && this.emitter.listenerCount('error') === 0) {
      const e = event as MatsSocketClientEvents['error'];
      this.options.logger.warn({ type: e.type, err: e.error }, e.message);
      return;
    }
    this.emitter.emit(name, event);
  }

  private timeoutOf(timeout: number | undefined): number {
    const value = timeout ?? this.options.requestTimeoutMs;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new ClientUsageError(`timeout must be a number of ms >= 0, was ${String(value)}`);
    }
    return Math.trunc(value);
  }

  private initiate(
    kind: Initiation['kind'],
    endpointId: string,
    traceId: string,
    message: unknown,
    debug: number | undefined,
    callbacks: Pick<Initiation, 'onAck' | 'onNack'>,
    request?: Omit<PendingRequest, 'initiation' | 'timer'>,
    timeoutMs?: number,
  ): void {
    if (typeof endpointId !== 'string' || endpointId.length === 0) {
      throw new ClientUsageError('endpointId must be a non-empty string');
    }
    if (typeof traceId !== 'string') throw new ClientUsageError('traceId must be a string');
    this.session.want();
    this.outbox.initiate(kind, endpointId, traceId, message, debug, callbacks, request, timeoutMs);
  }

  /** Every server envelope but WELCOME (which the session handles), in frame order. */
  private handleEnvelope(envelope: S2CEnvelope, receivedTimestamp: number): void {
    switch (envelope.t) {
      case 'WELCOME':
        return;
      case 'REAUTH':
        return this.session.auth.request('REAUTHENTICATE');
      case 'RETRY':
        return this.outbox.handleRetry(envelope.cmid, receivedTimestamp);
      case 'ACK':
      case 'NACK': {
        const cmids = [...(envelope.cmid === undefined ? [] : [envelope.cmid]), ...(envelope.ids ?? [])];
        return this.outbox.handleAck(envelope.t, cmids, envelope.desc, receivedTimestamp);
      }
      case 'ACK2':
        return this.inbox.forget([
          ...(envelope.smid === undefined ? [] : [envelope.smid]),
          ...(envelope.ids ?? []),
        ]);
      case 'SEND':
      case 'REQUEST':
        return this.inbox.handle(envelope, receivedTimestamp);
      case 'RESOLVE':
      case 'REJECT':
        if (envelope.smid !== undefined) this.acks.ack(envelope.smid);
        return this.outbox.handleReply(envelope, receivedTimestamp);
      case 'SUB_OK':
      case 'SUB_LOST':
      case 'SUB_NO_AUTH': {
        const type =
          envelope.t === 'SUB_OK' ? 'OK' : envelope.t === 'SUB_LOST' ? 'LOST_MESSAGES' : 'NOT_AUTHORIZED';
        return this.emit('subscription', { type, topicId: envelope.eid });
      }
      case 'PUB':
        return this.subscriptions.handlePub(envelope, receivedTimestamp);
      case 'PONG':
        return this.pinger.handlePong(envelope.x);
    }
  }
}
