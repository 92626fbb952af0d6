import type { C2SEnvelope, C2SReply, C2SRequest, C2SSend, S2CReply } from '../protocol/envelopes.ts';
import type {
  InitiationProcessedEvent,
  MatsSocketClientEvents,
  MessageEvent,
  MessageEventType,
  ReceivedEvent,
  ReceivedEventType,
} from './clientEvents.ts';
import type { ResolvedClientOptions } from './clientOptions.ts';
import { toDebugInformation } from './debugInformation.ts';
import { monotonicNow, roundMs } from './timing.ts';

type Timer = ReturnType<typeof setTimeout>;

/**
 * Send bookkeeping of one information-bearing client envelope: whether it waits in the pipeline, which connection
 * last carried it, how many times it was sent, and a pending RETRY timer.
 */
export interface Tracked {
  readonly envelope: C2SSend | C2SRequest | C2SReply;
  /** Sitting in the pipeline, not yet written. */
  queued: boolean;
  /** The id of the connection that last carried it. */
  sentOnConnection: number | undefined;
  /** Sends so far, counting the one pending in the pipeline. */
  attempt: number;
  retryTimer: Timer | undefined;
}

/** A client SEND/REQUEST waiting for ACK/NACK. */
export interface Initiation extends Tracked {
  readonly envelope: C2SSend | C2SRequest;
  readonly kind: InitiationProcessedEvent['kind'];
  readonly debug: number;
  readonly sentTimestamp: number;
  readonly sentAt: number;
  ackedAt: number | undefined;
  receivedType: ReceivedEventType | undefined;
  readonly onAck: ((event: ReceivedEvent) => void) | undefined;
  readonly onNack: ((event: ReceivedEvent) => void) | undefined;
  /** A SEND's deadline for its ACK/NACK (`sendTimeoutMs`); requests have their reply timeout instead. */
  ackTimer: Timer | undefined;
}

/** A client REQUEST waiting for its reply: settles a promise, or goes to a terminator (`requestReplyTo`). */
export interface PendingRequest {
  readonly initiation: Initiation;
  timer: Timer | undefined;
  readonly resolve?: (event: MessageEvent) => void;
  readonly reject?: (event: MessageEvent, description?: string) => void;
  readonly replyToTerminatorId?: string;
  readonly correlationInformation?: unknown;
}

/** What the outbox needs from its client. */
export interface OutboxHost {
  readonly options: ResolvedClientOptions;
  enqueue(envelope: C2SEnvelope, tracked?: Tracked): void;
  /** Takes a tracked envelope back out of the send queue before it is written. */
  dequeue(tracked: Tracked): void;
  flush(): void;
  ack2Later(cmids: readonly string[]): void;
  emit<K extends keyof MatsSocketClientEvents>(name: K, event: MatsSocketClientEvents[K]): void;
  /** Delivers a requestReplyTo outcome to its terminator (after the received-promise has settled). */
  deliverToTerminator(terminatorId: string, event: MessageEvent): void;
  /** `monotonicNow()` at the first WELCOME, if any. */
  firstSessionEstablishedAt(): number | undefined;
  /** The id of the current connection (0 when none yet). */
  connectionId(): number;
}

/**
 * The client's outbox (docs/protocol.md section 9.1): SEND/REQUESTs until ACK/NACK (or the reply that stands in for
 * it), requests until their reply or timeout, and the client's RESOLVE/REJECTs to server requests until ACK. It
 * completes each exactly once, resends on RETRY with back-off and after reconnects, and fails everything when the
 * session closes.
 */
export class Outbox {
  private readonly host: OutboxHost;
  private readonly initiations = new Map<string, Initiation>();
  private readonly requests = new Map<string, PendingRequest>();
  private readonly replies = new Map<string, Tracked>();
  private readonly processed: InitiationProcessedEvent[] = [];
  private cmidSequence = 0;
  private lastDebugSent: number | undefined;

  constructor(host: OutboxHost) {
    this.host = host;
  }

  /** The next client message id: a sequence per client, continuing across sessions, as the official client's. */
  nextCmid(): string {
    return String(this.cmidSequence++);
  }

  /** A new session starts with the server's S2C debug setting empty. */
  resetDebugState(): void {
    this.lastDebugSent = undefined;
  }

  /**
   * Creates and enqueues a SEND or REQUEST. `debug` defaults to the client's; `timeoutMs` (requests only) is sent
   * as `to` and arms the request's timeout.
   */
  initiate(
    kind: Initiation['kind'],
    endpointId: string,
    traceId: string,
    message: unknown,
    debugOverride: number | undefined,
    callbacks: Pick<Initiation, 'onAck' | 'onNack'>,
    request?: Omit<PendingRequest, 'initiation' | 'timer'>,
    timeoutMs = 0,
  ): void {
    const debug = debugOverride ?? this.host.options.debug;
    const cmid = this.nextCmid();
    const envelope: C2SSend | C2SRequest =
      kind === 'SEND'
        ? { t: 'SEND', eid: endpointId, tid: traceId, cmid }
        : { t: 'REQUEST', eid: endpointId, tid: traceId, cmid, to: timeoutMs };
    if (message !== undefined) envelope.msg = message;
    // Section 5: rd when non-zero, and rd: 0 once after a change back to 0 (so the first message carries rd: 0).
    if (debug !== 0 || this.lastDebugSent !== 0) envelope.rd = debug;
    this.lastDebugSent = debug;
    const initiation: Initiation = {
      envelope,
      kind,
      debug,
      sentTimestamp: Date.now(),
      sentAt: monotonicNow(),
      ackedAt: undefined,
      receivedType: undefined,
      onAck: callbacks.onAck,
      onNack: callbacks.onNack,
      queued: false,
      sentOnConnection: undefined,
      attempt: 1,
      retryTimer: undefined,
      ackTimer: undefined,
    };
    this.addInitiation(initiation, request, timeoutMs);
  }

  get outstandingInitiations(): number {
    return this.initiations.size;
  }

  get outstandingReplies(): number {
    return this.replies.size;
  }

  /** The last InitiationProcessedEvents, oldest first. */
  get initiationHistory(): readonly InitiationProcessedEvent[] {
    return this.processed;
  }

  private addInitiation(
    initiation: Initiation,
    request: Omit<PendingRequest, 'initiation' | 'timer'> | undefined,
    timeoutMs: number,
  ): void {
    const cmid = initiation.envelope.cmid;
    this.initiations.set(cmid, initiation);
    if (request) {
      const pending: PendingRequest = { ...request, initiation, timer: undefined };
      pending.timer = setTimeout(() => this.timeout(pending), timeoutMs);
      this.requests.set(cmid, pending);
    } else {
      initiation.ackTimer = setTimeout(() => {
        initiation.ackTimer = undefined;
        if (this.initiations.get(cmid) === initiation)
          this.completeReceived(initiation, 'TIMEOUT', Date.now());
      }, this.host.options.sendTimeoutMs);
    }
    this.host.enqueue(initiation.envelope, initiation);
  }

  /** Our RESOLVE/REJECT to a server REQUEST: kept until the server ACKs it. */
  addReply(envelope: C2SReply): void {
    const tracked: Tracked = {
      envelope,
      queued: false,
      sentOnConnection: undefined,
      attempt: 1,
      retryTimer: undefined,
    };
    this.replies.set(envelope.cmid, tracked);
    this.host.enqueue(envelope, tracked);
  }

  /** Server ACK/NACK of cmids. */
  handleAck(
    type: 'ACK' | 'NACK',
    cmids: readonly string[],
    description: string | undefined,
    now: number,
  ): void {
    this.host.ack2Later(cmids);
    for (const cmid of cmids) {
      const initiation = this.initiations.get(cmid);
      if (!initiation) {
        const reply = this.replies.get(cmid);
        if (reply) this.forget(reply, this.replies);
        continue;
      }
      this.completeReceived(initiation, type, now, description);
      const request = this.requests.get(cmid);
      if (request && type === 'NACK') this.completeRequest(request, 'NACK', undefined, now, description);
    }
  }

  /** A RESOLVE/REJECT for one of our requests; one that arrives before the ACK counts as ACK plus reply. */
  handleReply(envelope: S2CReply, now: number): void {
    const initiation = this.initiations.get(envelope.cmid);
    if (initiation) {
      this.host.ack2Later([envelope.cmid]);
      this.completeReceived(initiation, 'ACK', now);
    }
    const request = this.requests.get(envelope.cmid);
    if (!request) {
      this.host.options.logger.debug(
        { cmid: envelope.cmid },
        'reply for a request already completed: ignored',
      );
      return;
    }
    this.completeRequest(request, envelope.t, envelope, now, envelope.desc);
  }

  /** RETRY{cmid}: resend after `2^(attempt-2) × base + random(0..jitter)` ms, at most maxSendAttempts in all. */
  handleRetry(cmid: string, now: number): void {
    const tracked = this.initiations.get(cmid) ?? this.replies.get(cmid);
    if (!tracked || tracked.retryTimer !== undefined) return;
    if (!this.countAttempt(tracked, now)) return;
    const { retryDelayBaseMs: base, retryDelayJitterMs: jitter } = this.host.options;
    const delay = Math.pow(2, tracked.attempt - 2) * base + Math.round(Math.random() * jitter);
    tracked.retryTimer = setTimeout(() => {
      tracked.retryTimer = undefined;
      this.host.enqueue(tracked.envelope, tracked);
    }, delay);
  }

  /**
   * After WELCOME: resend every outstanding SEND/REQUEST and reply with its original cmid, each in its own frame,
   * except those sent on this very connection (they trailed the HELLO) and those waiting in the pipeline or for a
   * RETRY timer.
   */
  retransmit(now: number): void {
    for (const tracked of [...this.initiations.values(), ...this.replies.values()]) {
      if (tracked.queued || tracked.retryTimer !== undefined) continue;
      if (tracked.sentOnConnection === this.host.connectionId()) continue;
      if (!this.countAttempt(tracked, now)) continue;
      this.host.enqueue(tracked.envelope, tracked);
      this.host.flush();
    }
  }

  /** The session is gone: every outstanding initiation and request fails with SESSION_CLOSED. */
  failAll(now: number): void {
    for (const reply of [...this.replies.values()]) this.forget(reply, this.replies);
    for (const initiation of [...this.initiations.values()])
      this.completeReceived(initiation, 'SESSION_CLOSED', now);
    for (const request of [...this.requests.values()])
      this.completeRequest(request, 'SESSION_CLOSED', undefined, now);
  }

  /** Counts one more send; past the limit the message fails instead. */
  private countAttempt(tracked: Tracked, now: number): boolean {
    tracked.attempt++;
    if (tracked.attempt <= this.host.options.maxSendAttempts) return true;
    const { t, cmid } = tracked.envelope;
    this.host.emit('error', {
      type: 'too-many-attempts',
      message: `${t} cmid ${cmid} was sent ${this.host.options.maxSendAttempts} times without being accepted`,
    });
    const initiation = this.initiations.get(cmid);
    if (initiation === tracked) {
      this.completeReceived(initiation, 'ATTEMPTS_EXHAUSTED', now);
      const request = this.requests.get(cmid);
      if (request) this.completeRequest(request, 'ATTEMPTS_EXHAUSTED', undefined, now);
    } else this.forget(tracked, this.replies);
    return false;
  }

  /**
   * Ends the bookkeeping of a message: its timers stop and, if it still waits in the send queue (not yet written,
   * e.g. while disconnected or held for authorization), it is taken out, so a message reported as TIMEOUT or
   * SESSION_CLOSED is never sent afterwards: an application that retries would have it processed twice.
   */
  private forget<T extends Tracked>(tracked: T, map: Map<string, T>): void {
    if (tracked.retryTimer !== undefined) clearTimeout(tracked.retryTimer);
    tracked.retryTimer = undefined;
    const ackTimer = (tracked as Partial<Initiation>).ackTimer;
    if (ackTimer !== undefined) clearTimeout(ackTimer);
    if (tracked.queued) this.host.dequeue(tracked);
    map.delete(tracked.envelope.cmid);
  }

  private timeout(request: PendingRequest): void {
    request.timer = undefined;
    const now = Date.now();
    const initiation = this.initiations.get(request.initiation.envelope.cmid);
    if (initiation) this.completeReceived(initiation, 'TIMEOUT', now);
    this.completeRequest(request, 'TIMEOUT', undefined, now);
  }

  private completeReceived(
    initiation: Initiation,
    type: ReceivedEventType,
    receivedTimestamp: number,
    description?: string,
  ): void {
    this.forget(initiation, this.initiations);
    initiation.ackedAt = monotonicNow();
    initiation.receivedType = type;
    const event: ReceivedEvent = {
      type,
      cmid: initiation.envelope.cmid,
      traceId: initiation.envelope.tid,
      sentTimestamp: initiation.sentTimestamp,
      receivedTimestamp,
      roundTripMs: roundMs(initiation.ackedAt - initiation.sentAt),
    };
    if (description !== undefined) event.description = description;
    const callback = type === 'ACK' ? initiation.onAck : initiation.onNack;
    try {
      callback?.(event);
    } catch (error) {
      this.host.emit('error', { type: 'callback-threw', message: `the ${type} callback threw`, error });
    }
    // A SEND is processed at ACK/NACK. The event waits a macrotask so the send() promise settles first.
    if (initiation.kind === 'SEND' && (type === 'ACK' || type === 'NACK')) {
      setTimeout(() => this.issueProcessed(initiation), 0);
    }
  }

  private completeRequest(
    request: PendingRequest,
    type: MessageEventType,
    reply: S2CReply | undefined,
    receivedTimestamp: number,
    description?: string,
  ): void {
    const { initiation } = request;
    const cmid = initiation.envelope.cmid;
    if (this.requests.get(cmid) !== request) return;
    this.requests.delete(cmid);
    if (request.timer !== undefined) clearTimeout(request.timer);
    request.timer = undefined;
    const event: MessageEvent = {
      type,
      data: reply?.msg,
      traceId: initiation.envelope.tid,
      messageId: cmid,
      receivedTimestamp,
      clientRequestTimestamp: initiation.sentTimestamp,
      roundTripMs: roundMs(monotonicNow() - initiation.sentAt),
    };
    if (request.correlationInformation !== undefined)
      event.correlationInformation = request.correlationInformation;
    if (initiation.debug !== 0 && reply) {
      event.debug = toDebugInformation(reply.debug, receivedTimestamp, {
        requested: initiation.debug,
        sentTimestamp: initiation.sentTimestamp,
      });
    }
    this.issueProcessed(initiation, event, request.replyToTerminatorId);
    if (request.replyToTerminatorId !== undefined) {
      const terminatorId = request.replyToTerminatorId;
      // After a macrotask, so the requestReplyTo() received-promise settles before the terminator runs.
      setTimeout(() => this.host.deliverToTerminator(terminatorId, event), 0);
    } else if (type === 'RESOLVE') request.resolve?.(event);
    else request.reject?.(event, description);
  }

  private issueProcessed(
    initiation: Initiation,
    replyEvent?: MessageEvent,
    replyToTerminatorId?: string,
  ): void {
    const established = this.host.firstSessionEstablishedAt();
    const event: InitiationProcessedEvent = {
      kind: initiation.kind,
      endpointId: initiation.envelope.eid,
      cmid: initiation.envelope.cmid,
      traceId: initiation.envelope.tid,
      sentTimestamp: initiation.sentTimestamp,
      sessionEstablishedOffsetMs: established === undefined ? 0 : roundMs(initiation.sentAt - established),
      receivedType: initiation.receivedType ?? 'ACK',
    };
    if (initiation.ackedAt !== undefined)
      event.acknowledgeRoundTripMs = roundMs(initiation.ackedAt - initiation.sentAt);
    if (replyEvent) {
      event.replyType = replyEvent.type;
      event.replyEvent = replyEvent;
      if (replyEvent.roundTripMs !== undefined) event.requestRoundTripMs = replyEvent.roundTripMs;
    }
    if (replyToTerminatorId !== undefined) event.replyToTerminatorId = replyToTerminatorId;
    if (this.host.options.initiationHistorySize > 0) {
      this.processed.push(event);
      while (this.processed.length > this.host.options.initiationHistorySize) this.processed.shift();
    }
    this.host.emit('initiation:processed', event);
  }
}
