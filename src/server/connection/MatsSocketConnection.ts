import type { WebSocket } from 'ws';
import type { Logger } from '../../logging.ts';
import {
  CloseCode,
  closeCodeName,
  serverSessionActionOnClose,
  truncateCloseReason,
} from '../../protocol/closeCodes.ts';
import { encodeFrame } from '../../protocol/encodeFrame.ts';
import type { C2SEnvelope } from '../../protocol/envelopes.ts';
import { isInformationBearing } from '../../protocol/MessageType.ts';
import type { AuthenticationPlugin, ConnectionInfo } from '../auth/AuthenticationPlugin.ts';
import type { ServerCore } from '../ServerCore.ts';
import type { SessionEstablishedType } from '../ServerEvents.ts';
import { ConnectionAuthState } from './ConnectionAuthState.ts';
import { EnvelopeRecorder } from './EnvelopeRecorder.ts';
import { FramePipeline } from './FramePipeline.ts';
import { OutgoingQueue, type OutEnvelope } from './OutgoingQueue.ts';
import { SendBufferGuard } from './SendBufferGuard.ts';
import { InboundFlow } from './InboundRate.ts';

/** docs/protocol.md 7.1. */
export type ConnectionState = 'OPEN' | 'SESSION_ESTABLISHED' | 'DEREGISTERED' | 'CLOSED';

/** What the session of an ended connection gets (section 6): `none` when no session was bound. */
type EndAction = 'terminate' | 'deregister' | 'none';

/** Frames queued for processing above which the socket is paused (backpressure against flooding clients). */
const MAX_QUEUED_FRAMES = 64;

/** Bytes of frames a peer may still send after this side closed before the connection is cut. */
const IGNORED_AFTER_CLOSE_BYTES = 1024 * 1024;

/** Un-ACK2'ed cmids tracked per connection before falling back to a store read for every message. */
const MAX_TRACKED_CMIDS = 10_000;

/**
 * One WebSocket connection: its state, timers (HELLO deadline, idle timeout, BR-6 pings), the ordered frame
 * pipeline, the coalescing outgoing queue, and what happens to its session when it ends (section 6).
 */
export class MatsSocketConnection {
  readonly connectionId: string;
  readonly info: ConnectionInfo;
  readonly plugin: AuthenticationPlugin;
  readonly core: ServerCore;
  readonly auth: ConnectionAuthState;
  readonly out: OutgoingQueue;
  readonly recorder: EnvelopeRecorder;
  readonly log: Logger;
  readonly #ws: WebSocket;
  readonly #pipeline: FramePipeline;
  readonly #sendGuard: SendBufferGuard;
  readonly #onEstablished: (() => void) | undefined;
  #state: ConnectionState = 'OPEN';
  #sessionId: string | undefined;
  /** Session-level S2C debug options (section 5 rule 1). */
  s2cDebugOptions = 0;
  /** Set once HELLO was seen on this connection (a second one closes 1008). */
  helloSeen = false;
  /**
   * The cmids received on this connection and not yet ACK2'ed. For a session created on this connection, a cmid
   * not in here cannot be in the inbox, so the duplicate check needs no store read (throughput). A resumed session
   * may have inbox rows from earlier connections: `inboxMayHoldOlder` makes every message be checked.
   */
  readonly seenCmids = new Set<string>();
  /** Client messages being handled, by cmid (a resend of one waits for it). */
  readonly inFlightCmids = new Map<string, Promise<void>>();
  inboxMayHoldOlder = true;
  /** HELLO metadata, for events and introspection. */
  appName = '';
  appVersion = '';
  clientLib = '';
  readonly openedTs: number;
  /** When the session was established on this connection (epoch ms; 0 before). */
  establishedTs = 0;
  /** The last client PING (epoch ms; 0 before the first). */
  lastClientPingTs = 0;
  /** The last information-bearing envelope received or written, or the establishment (epoch ms). */
  lastActivityTs = 0;
  #lastInboundTs: number;
  #chain: Promise<void> = Promise.resolve();
  readonly #inbound: InboundFlow;
  #ignoredBytes = 0;
  #helloTimer: NodeJS.Timeout | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #pingTimer: NodeJS.Timeout | undefined;
  #unansweredPings = 0;
  /** Set when this side decided the connection ends (close sent or terminated). */
  #closing: { code: number; reason: string; action: EndAction } | undefined;
  #ended: Promise<void> | undefined;

  /** @param onEstablished runs once the session is established (the connection is authenticated). */
  constructor(
    ws: WebSocket,
    info: ConnectionInfo,
    plugin: AuthenticationPlugin,
    core: ServerCore,
    onEstablished?: () => void,
  ) {
    this.#ws = ws;
    this.#onEstablished = onEstablished;
    this.info = info;
    this.connectionId = info.connectionId;
    this.plugin = plugin;
    this.core = core;
    this.log = core.logger.child({ connectionId: this.connectionId });
    this.openedTs = core.now();
    this.#lastInboundTs = this.openedTs;
    this.auth = new ConnectionAuthState(this);
    const limits = core.options.limits;
    this.recorder = new EnvelopeRecorder({
      maxEntries: limits.envelopesRecordedPerSession,
      maxBytes: limits.envelopesRecordedMaxBytes,
      maxFieldChars: limits.recordedFieldMaxChars,
    });
    this.#sendGuard = new SendBufferGuard(
      ws,
      { maxBytes: limits.maxSendBufferBytes, drainTimeoutMs: core.options.timings.sendDrainTimeoutMs },
      (limit, reason) => {
        core.metrics.limitTripped(limit);
        this.log.info({ sessionId: this.#sessionId, limit }, reason);
        this.terminate(reason);
      },
    );
    this.#inbound = new InboundFlow(
      ws,
      {
        maxQueuedFrames: MAX_QUEUED_FRAMES,
        maxQueuedInboundBytes: limits.maxQueuedInboundBytes,
        maxInboundBytesPerSecond: limits.maxInboundBytesPerSecond,
        inboundBurstBytes: limits.inboundBurstBytes,
      },
      (limit) => core.metrics.limitTripped(limit),
    );
    this.out = new OutgoingQueue({
      writeEnvelopes: (envelopes) => void this.writeEnvelopes(envelopes),
      s2cDebugOptions: () => this.s2cDebugOptions,
      nodeName: core.options.nodeName,
      now: () => core.now(),
    });
    this.#pipeline = new FramePipeline(this);
    ws.on('message', (data, isBinary) => this.#onMessage(data, isBinary));
    ws.on('pong', () => this.#onInbound());
    ws.on('ping', () => this.#onInbound());
    ws.on('error', (err) => this.log.debug({ err }, 'WebSocket error'));
    ws.on('close', (code, reason) => this.#onClose(code, reason.toString('utf8')));
    this.#helloTimer = setTimeout(() => {
      if (this.#state !== 'OPEN') return;
      core.metrics.inboundLimit('helloTimeoutMs');
      this.close(1001, 'no HELLO in time');
    }, core.options.timings.helloTimeoutMs);
  }

  get state(): ConnectionState {
    return this.#state;
  }

  get sessionId(): string | undefined {
    return this.#sessionId;
  }

  get established(): boolean {
    return this.#state === 'SESSION_ESTABLISHED' && this.#closing === undefined;
  }

  /** True while frames are still processed (not closing, not ended). */
  get active(): boolean {
    return this.#closing === undefined && (this.#state === 'OPEN' || this.#state === 'SESSION_ESTABLISHED');
  }

  get lastInboundTs(): number {
    return this.#lastInboundTs;
  }

  /** Resolves when the connection ended and its session action (terminate/deregister) is done. */
  get ended(): Promise<void> | undefined {
    return this.#ended;
  }

  /** Called by HELLO once the session row is written (section 8.1 step 4 / 8.2 step 7). */
  bindSession(sessionId: string, type: SessionEstablishedType, userId: string): void {
    this.#sessionId = sessionId;
    this.inboxMayHoldOlder = type !== 'NEW';
    if (!this.active) {
      // The client went away while HELLO was in the store: undo the registration (guarded by connection id).
      this.core.registry.remove(sessionId, this);
      this.core.store
        .deregisterSessionFromThisNode(sessionId, this.connectionId)
        .catch((err: unknown) =>
          this.log.warn({ err, sessionId }, 'could not deregister after a closed HELLO'),
        );
      return;
    }
    this.#state = 'SESSION_ESTABLISHED';
    this.establishedTs = this.lastActivityTs = this.core.now();
    clearTimeout(this.#helloTimer);
    this.#startIdleAndPing();
    this.#onEstablished?.();
    this.core.metrics.sessionEstablished(type, this.core.registry.size);
    this.core.events.emit('sessionEstablished', {
      type,
      sessionId,
      userId,
      connectionId: this.connectionId,
      appName: this.appName,
      appVersion: this.appVersion,
      clientLib: this.clientLib,
      nodeName: this.core.options.nodeName,
    });
    this.log.info({ sessionId, userId, type }, 'MatsSocket session established');
  }

  /** Writes envelopes as one frame right away (WELCOME, forwarder rounds, the outgoing queue). */
  writeEnvelopes(envelopes: readonly OutEnvelope[]): Promise<boolean> {
    if (envelopes.length === 0) return Promise.resolve(true);
    for (const e of envelopes) {
      this.core.metrics.messageOut(e.t);
      if (isInformationBearing(e.t) || e.t === 'PUB') this.lastActivityTs = this.core.now();
    }
    this.recorder.record('out', envelopes, this);
    this.log.debug({ sessionId: this.#sessionId, envelopes: envelopes.map(summary) }, 'frame sent');
    return this.writeText(encodeFrame(envelopes));
  }

  /**
   * Writes a text frame; resolves false if the socket is gone, the write failed, or the send buffer is full (which
   * terminates the connection: see {@link SendBufferGuard}).
   */
  writeText(text: string): Promise<boolean> {
    const ws = this.#ws;
    if (ws.readyState !== ws.OPEN || this.#closing) return Promise.resolve(false);
    const guard = this.#sendGuard;
    if (!guard.admit(text.length)) return Promise.resolve(false);
    return new Promise((resolve) => {
      ws.send(text, (err) => {
        guard.flushed();
        resolve(!err);
      });
      guard.wrote();
    });
  }

  /**
   * Closes the connection from the server side with `code` and `reason` (truncated to 123 bytes). The session
   * action follows section 6 unless `action` overrides it (`none` for closes that must not touch the session,
   * e.g. resume by another user). Idempotent: the first close wins.
   */
  close(code: number, reason: string, action?: EndAction): void {
    if (this.#closing || this.#state === 'CLOSED' || this.#state === 'DEREGISTERED') return;
    const resolved = action ?? (this.#sessionId ? serverSessionActionOnClose(code, 'server') : 'none');
    // Answers already scheduled (ACK, NACK, ...) go out before the close frame: the client need not resend.
    this.out.flush();
    this.#closing = { code, reason, action: resolved };
    this.log.debug(
      { code, codeName: closeCodeName(code), reason, sessionId: this.#sessionId },
      'closing WebSocket',
    );
    this.out.close();
    const sendClose = (): void => {
      try {
        this.#ws.close(code, truncateCloseReason(reason));
      } catch (err) {
        this.log.debug({ err }, 'WebSocket close failed; terminating');
        this.#ws.terminate();
      }
    };
    if (resolved === 'terminate' && code === CloseCode.CLOSE_SESSION && this.#sessionId) {
      // The server closes the session (closeSession, e.g. an operator's kick): it is gone from the store before the
      // client hears so, and a client reconnecting at once with its sid gets 4001 instead of resuming it (the close
      // is guarded by this connection's id, and a resume would have moved the registration to its own). Protocol
      // violations close at once: what counts there is that the frame goes out before more input is refused.
      void this.#endSession(resolved, code, reason).finally(sendClose);
      return;
    }
    sendClose();
    void this.#endSession(resolved, code, reason);
  }

  /** Ends the TCP connection without a close handshake and deregisters (BR-6). */
  terminate(reason: string): void {
    if (this.#closing) return;
    this.#closing = { code: 1006, reason, action: this.#sessionId ? 'deregister' : 'none' };
    this.out.close();
    this.#ws.terminate();
    void this.#endSession(this.#closing.action, 1006, reason);
  }

  /** Whether a client message id may already be in the inbox (then the store is asked before the handler runs). */
  mayBeDuplicate(cmid: string): boolean {
    const seen = this.seenCmids.has(cmid);
    if (this.seenCmids.size >= MAX_TRACKED_CMIDS) {
      this.inboxMayHoldOlder = true;
      this.seenCmids.clear();
    }
    if (!this.inboxMayHoldOlder) this.seenCmids.add(cmid);
    return seen || this.inboxMayHoldOlder;
  }

  /** Records inbound envelopes for introspection and message listeners. */
  recordIn(envelopes: readonly C2SEnvelope[]): void {
    for (const e of envelopes) {
      this.core.metrics.messageIn(e.t);
      if (e.t === 'PING') this.lastClientPingTs = this.core.now();
      else if (isInformationBearing(e.t)) this.lastActivityTs = this.core.now();
    }
    this.recorder.record('in', envelopes, this);
    this.log.debug({ sessionId: this.#sessionId, envelopes: envelopes.map(summary) }, 'frame received');
  }

  #onMessage(data: Buffer | Buffer[] | ArrayBuffer, isBinary: boolean): void {
    this.#onInbound();
    if (!this.active) {
      // A peer that goes on sending after this side closed (40 PINGs of 2 MiB after the first was refused) makes
      // ws assemble frames nobody processes: past 1 MiB of them, cut the connection.
      this.#ignoredBytes += Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data.byteLength;
      if (this.#closing && this.#ignoredBytes > IGNORED_AFTER_CLOSE_BYTES) this.#ws.terminate();
      return;
    }
    if (isBinary) {
      this.close(4004, 'Binary frames are not supported: MatsSocket frames are JSON text');
      return;
    }
    const buffer = Buffer.isBuffer(data)
      ? data
      : Array.isArray(data)
        ? Buffer.concat(data)
        : Buffer.from(data);
    const limits = this.core.options.limits;
    const max = this.#state === 'OPEN' ? limits.preHelloMaxFrameBytes : limits.maxFrameBytes;
    if (buffer.length > max) {
      this.core.metrics.inboundLimit(this.#state === 'OPEN' ? 'preHelloMaxFrameBytes' : 'maxFrameBytes');
      this.close(1009, `Frame of ${buffer.length} bytes exceeds the limit of ${max} bytes`);
      return;
    }
    const text = buffer.toString('utf8');
    const processed = this.#inbound.admit(buffer.length);
    this.#chain = this.#chain
      .then(() => (this.active ? this.#pipeline.process(text) : undefined))
      .catch((err: unknown) => {
        this.log.error({ err }, 'unexpected error processing a frame');
        this.close(1011, 'Unexpected server error processing a frame');
      })
      .finally(processed);
  }

  #onInbound(): void {
    this.#lastInboundTs = this.core.now();
    this.#unansweredPings = 0;
    this.#idleTimer?.refresh();
  }

  #startIdleAndPing(): void {
    const t = this.core.options.timings;
    this.#idleTimer = setTimeout(() => {
      if (!this.established) return;
      this.core.metrics.inboundLimit('idleTimeoutMs');
      this.close(1001, 'Idle timeout: no frame from the client in time');
    }, t.idleTimeoutMs);
    if (t.wsPingIntervalMs > 0) {
      this.#pingTimer = setInterval(() => {
        if (!this.established) return;
        // The previous ping got no inbound frame in reply: this would be the 2nd ping without one (BR-6, ~50 s).
        if (++this.#unansweredPings >= 2) {
          this.core.metrics.inboundLimit('wsPingIntervalMs');
          this.log.info(
            { sessionId: this.#sessionId },
            'no answer to 2 WebSocket pings: terminating the connection',
          );
          this.terminate('no answer to WebSocket pings');
          return;
        }
        try {
          this.#ws.ping();
        } catch (err) {
          this.log.debug({ err }, 'WebSocket ping failed');
        }
      }, t.wsPingIntervalMs);
    }
  }

  #stopTimers(): void {
    this.#sendGuard.stop();
    this.#inbound.stop();
    clearTimeout(this.#helloTimer);
    clearTimeout(this.#idleTimer);
    clearInterval(this.#pingTimer);
  }

  #onClose(code: number, reason: string): void {
    this.out.close();
    if (this.#closing) {
      void this.#endSession(this.#closing.action, this.#closing.code, this.#closing.reason);
      return;
    }
    const action: EndAction = this.#sessionId ? serverSessionActionOnClose(code, 'client') : 'none';
    this.#closing = { code, reason, action };
    void this.#endSession(action, code, reason);
  }

  /** Runs the session action once (section 6), then marks the connection ended. */
  #endSession(action: EndAction, code: number, reason: string): Promise<void> {
    this.#ended ??= this.#doEndSession(action, code, reason);
    return this.#ended;
  }

  async #doEndSession(action: EndAction, code: number, reason: string): Promise<void> {
    this.#stopTimers();
    const core = this.core;
    this.recorder.flush(this);
    const sid = this.#sessionId;
    const wasEstablished = this.#state === 'SESSION_ESTABLISHED';
    this.#state = action === 'terminate' ? 'CLOSED' : action === 'deregister' ? 'DEREGISTERED' : 'CLOSED';
    core.dropSubscriptions(this);
    if (sid) core.registry.remove(sid, this);
    if (!sid || action === 'none') return;
    // Both guarded by connection id: a connection superseded by a resume elsewhere (its CloseWS lost) ends without
    // touching the session its successor holds.
    let closed = false;
    try {
      if (action === 'terminate') closed = await core.store.closeSessionOfConnection(sid, this.connectionId);
      else await core.store.deregisterSessionFromThisNode(sid, this.connectionId);
    } catch (err) {
      this.log.warn({ err, sessionId: sid, action }, 'could not update the store for an ended connection');
    }
    const type = closed ? 'CLOSE' : 'DEREGISTER';
    if (wasEstablished || closed) {
      core.metrics.sessionRemoved(type, core.registry.size);
      core.events.emit('sessionRemoved', {
        type,
        sessionId: sid,
        ...(this.auth.userId !== undefined ? { userId: this.auth.userId } : {}),
        connectionId: this.connectionId,
        closeCode: code,
        reason,
      });
      this.log.info({ sessionId: sid, type, code, reason }, 'MatsSocket session removed from this node');
    }
  }
}

/** An envelope for the debug log: type and ids, never `auth` or `msg`. */
function summary(e: {
  t: string;
  cmid?: unknown;
  smid?: unknown;
  eid?: unknown;
  tid?: unknown;
  ids?: unknown;
}): object {
  return { t: e.t, cmid: e.cmid, smid: e.smid, eid: e.eid, tid: e.tid, ids: e.ids };
}
