import { ProtocolError } from '../../errors.ts';
import { s2cDebugOptionsAfterFrame } from '../../protocol/debugOptions.ts';
import type { C2SEnvelope, C2SSub, C2SUnsub } from '../../protocol/envelopes.ts';
import { isInformationBearing } from '../../protocol/MessageType.ts';
import { parseClientFrame } from '../../protocol/parseClientFrame.ts';
import type { ClientNack, InformationEnvelope } from '../ServerCore.ts';
import { isAuthenticationResult } from './ConnectionAuthState.ts';
import { handleHello } from './HelloHandler.ts';
import type { MatsSocketConnection } from './MatsSocketConnection.ts';

type Held = InformationEnvelope | C2SSub | C2SUnsub;

/**
 * Processes the frames of one connection, one at a time and in arrival order (docs/protocol.md 7.2). The connection
 * chains the calls; this class holds the REAUTH hold (step 9) between frames.
 */
export class FramePipeline {
  readonly #conn: MatsSocketConnection;
  #held: Held[] = [];
  #heldInfoCount = 0;
  #heldBytes = 0;
  #withoutProgress = 0;

  constructor(conn: MatsSocketConnection) {
    this.#conn = conn;
  }

  async process(text: string): Promise<void> {
    const conn = this.#conn;
    const core = conn.core;
    // 1. Parse.
    let envelopes: C2SEnvelope[];
    try {
      envelopes = parseClientFrame(text, core.options.limits, (limit) => core.metrics.inboundLimit(limit));
    } catch (err) {
      const code = err instanceof ProtocolError ? err.closeCode : 4004;
      conn.close(code, `Protocol error: ${(err as Error).message}`);
      return;
    }
    conn.recordIn(envelopes);
    // 2. Authorization: the last `auth` of the frame wins; AUTH envelopes carry nothing else.
    let newAuth: string | undefined;
    for (const e of envelopes) if (e.auth !== undefined) newAuth = e.auth;
    const remaining: C2SEnvelope[] = [];
    const acks: string[] = [];
    const nacks: ClientNack[] = [];
    const ack2s: string[] = [];
    // 3-6. Control traffic, which needs an established session but no valid authorization.
    for (const e of envelopes) {
      switch (e.t) {
        case 'AUTH':
          break;
        case 'PING':
        case 'PONG':
        case 'ACK':
        case 'NACK':
        case 'ACK2':
          if (!conn.established) {
            conn.close(4004, `${e.t} before the session was established (HELLO)`);
            return;
          }
          if (e.t === 'PING') {
            // The PONG echoes `x`: unbounded, a peer could make the node write (and buffer) what it sends.
            const max = core.options.limits.maxPingIdLength;
            if (e.x.length > max) {
              core.metrics.limitTripped('ping_id_length');
              conn.close(4004, `PING x longer than ${max} characters`);
              return;
            }
            conn.out.enqueue({ t: 'PONG', x: e.x }, 0);
          } else if (e.t === 'ACK') acks.push(...(e.ids ?? [e.smid!]));
          else if (e.t === 'NACK') for (const smid of e.ids ?? [e.smid!]) nacks.push({ smid, desc: e.desc });
          else if (e.t === 'ACK2') {
            if (e.cmid !== undefined) ack2s.push(e.cmid);
            if (e.ids) ack2s.push(...e.ids);
          }
          break;
        case 'HELLO':
        case 'SEND':
        case 'REQUEST':
        case 'RESOLVE':
        case 'REJECT':
        case 'SUB':
        case 'UNSUB':
          remaining.push(e);
      }
    }
    // Awaited: they resolve at once unless this connection has too many ids being settled (backpressure).
    if (acks.length > 0 || nacks.length > 0) await core.onClientAcks(conn, acks, nacks);
    if (ack2s.length > 0) await core.onClientAck2(conn, ack2s);
    if (!conn.active) return;
    // 7. Early exit: control traffic needs no valid authorization.
    if (remaining.length === 0 && this.#held.length === 0 && newAuth === undefined) return;
    // 8. Authenticate (one evaluation per frame).
    const authOutcome = await this.#authenticate(newAuth);
    if (authOutcome === 'closed' || !conn.active) return;
    if (authOutcome === 'reauth') {
      this.#hold(remaining);
      return;
    }
    // 10. Require a principal, an authorization value and a userId.
    if (!conn.auth.hasPrincipal || conn.auth.authorization === undefined) {
      conn.close(1008, 'Missing authentication');
      return;
    }
    // 11. HELLO.
    const rest: C2SEnvelope[] = [];
    for (const e of remaining) {
      if (e.t !== 'HELLO') {
        rest.push(e);
        continue;
      }
      if (conn.helloSeen) {
        conn.close(1008, 'Received a second HELLO on the same connection');
        return;
      }
      if (!(await handleHello(conn, e)) || !conn.active) return;
    }
    // 12. Require an established session.
    if (!conn.established) {
      conn.close(1008, 'Messages before HELLO: the session is not established');
      return;
    }
    // 13. Apply `rd` with the allowed set in force now.
    conn.s2cDebugOptions = s2cDebugOptionsAfterFrame(
      rest as { rd?: number }[],
      conn.auth.allowedDebugOptions,
      conn.s2cDebugOptions,
    );
    // 14. Held envelopes first, then this frame's, in order.
    const all: C2SEnvelope[] = [...this.#held, ...rest];
    this.#held = [];
    this.#heldInfoCount = 0;
    this.#heldBytes = 0;
    for (const e of all) {
      if (!conn.established) return;
      switch (e.t) {
        case 'SEND':
        case 'REQUEST':
        case 'RESOLVE':
        case 'REJECT':
          // Resolves once admitted by the in-flight limits: a flooding client waits here, its socket unread.
          await core.dispatchIncoming(conn, e, core.now());
          break;
        case 'SUB':
          await core.subscribe(conn, e);
          break;
        case 'UNSUB':
          core.unsubscribe(conn, e.eid);
          break;
        case 'HELLO':
        case 'ACK':
        case 'ACK2':
        case 'AUTH':
        case 'NACK':
        case 'PING':
        case 'PONG':
          conn.close(4004, `Unexpected message type ${e.t} in an established session`);
          return;
      }
    }
    // 15. Progress.
    this.#withoutProgress = 0;
  }

  /** Step 8; 'reauth' means step 9 applies. */
  async #authenticate(newAuth: string | undefined): Promise<'ok' | 'reauth' | 'closed'> {
    const conn = this.#conn;
    const auth = conn.auth;
    const plugin = conn.plugin;
    if (!auth.hasPrincipal) {
      if (newAuth === undefined) {
        conn.close(1008, 'Missing Authorization');
        return 'closed';
      }
      let result: unknown;
      try {
        result = await plugin.initialAuthentication(auth, newAuth);
      } catch (err) {
        conn.log.info({ err }, 'initialAuthentication threw');
        conn.close(1008, `Initial Auth-eval threw: ${(err as Error)?.message ?? String(err)}`);
        return 'closed';
      }
      if (!conn.active) return 'closed';
      if (isAuthenticationResult(result) && result.kind === 'authenticated') {
        this.#accepted(result, newAuth);
        return 'ok';
      }
      const reason =
        isAuthenticationResult(result) && result.kind === 'invalid' ? result.reason : 'illegal result';
      conn.close(1008, `Initial Auth-eval: ${reason}`);
      return 'closed';
    }
    const value = newAuth ?? auth.authorization ?? '';
    let result: unknown;
    try {
      result = await plugin.reevaluateAuthentication(auth, value, auth.principal);
    } catch (err) {
      conn.log.info({ err }, 'reevaluateAuthentication threw');
      conn.close(1008, `Auth re-eval threw: ${(err as Error)?.message ?? String(err)}`);
      return 'closed';
    }
    if (!conn.active) return 'closed';
    if (!isAuthenticationResult(result)) {
      conn.close(1008, 'Auth re-eval: illegal result');
      return 'closed';
    }
    if (result.kind === 'invalid') {
      // A new value that is still invalid gets a new REAUTH; the same value does not.
      if (auth.reauthSentFor !== value) {
        auth.reauthSentFor = value;
        conn.out.enqueue({ t: 'REAUTH' }, conn.core.options.timings.subReplyDelayMs);
      }
      auth.reauthOutstanding = true;
      if (newAuth !== undefined) auth.authorization = newAuth;
      conn.log.debug({ reason: result.reason }, 'reevaluateAuthentication: invalid, REAUTH');
      return 'reauth';
    }
    this.#accepted(result, value);
    return 'ok';
  }

  #accepted(result: Parameters<MatsSocketConnection['auth']['accept']>[0], value: string): void {
    const conn = this.#conn;
    if (conn.auth.accept(result, value) && conn.sessionId) conn.core.pokeForwarder(conn.sessionId);
  }

  /** Step 9: hold SUB/UNSUB and information-bearing envelopes while REAUTH is outstanding. */
  #hold(remaining: C2SEnvelope[]): void {
    const conn = this.#conn;
    const limits = conn.core.options.limits;
    for (const e of remaining) {
      if (e.t === 'SUB' || e.t === 'UNSUB') {
        if (e.eid.length > limits.maxTopicIdLength) {
          conn.core.metrics.inboundLimit('maxTopicIdLength');
          conn.close(1008, `Topic id longer than ${limits.maxTopicIdLength} characters`);
          return;
        }
        if (this.#held.length - this.#heldInfoCount >= limits.reauthHoldMaxSubs) {
          conn.core.metrics.inboundLimit('reauthHoldMaxSubs');
          conn.close(1008, 'Too many SUB/UNSUB held while waiting for REAUTH');
          return;
        }
        this.#held.push(e);
        continue;
      }
      if (!isInformationBearing(e.t)) {
        conn.close(4004, `${e.t} while waiting for REAUTH: only information-bearing messages may be held`);
        return;
      }
      const info = e as InformationEnvelope;
      if (++this.#withoutProgress > limits.reauthMaxWithoutProgress) {
        conn.core.metrics.inboundLimit('reauthMaxWithoutProgress');
        conn.close(1008, 'Too many messages without progress while waiting for REAUTH');
        return;
      }
      const bytes = info.msg === undefined ? 0 : Buffer.byteLength(JSON.stringify(info.msg) ?? '');
      if (
        this.#heldInfoCount < limits.reauthHoldMaxEnvelopes &&
        this.#heldBytes + bytes <= limits.reauthHoldMaxBytes
      ) {
        this.#held.push(info);
        this.#heldInfoCount++;
        this.#heldBytes += bytes;
      } else {
        conn.core.metrics.inboundLimit(
          this.#heldInfoCount >= limits.reauthHoldMaxEnvelopes
            ? 'reauthHoldMaxEnvelopes'
            : 'reauthHoldMaxBytes',
        );
        conn.out.enqueue(
          { t: 'RETRY', cmid: info.cmid, desc: 'Too many messages held while waiting for REAUTH' },
          conn.core.options.timings.ackDelayMs,
        );
      }
    }
  }
}
