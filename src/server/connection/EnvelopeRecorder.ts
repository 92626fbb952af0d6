import type { IncomingResolution, MessageEvent } from '../ServerEvents.ts';
import { detachedPrefix } from '../../util/detachedPrefix.ts';
import { AnswerTimings } from './AnswerTimings.ts';
import { initiationOf } from './initiationOf.ts';

interface RecordableConnection {
  readonly sessionId: string | undefined;
  readonly connectionId: string;
  readonly core: {
    now(): number;
    readonly options: { readonly nodeName: string };
    readonly events: { hasListeners(e: 'message'): boolean; emit(e: 'message', m: MessageEvent): void };
  };
}

interface RecordableEnvelope {
  t: string;
  cmid?: unknown;
  smid?: unknown;
  eid?: unknown;
  tid?: unknown;
  ids?: unknown;
  desc?: unknown;
  x?: unknown;
}

/** What the incoming handler did with a client SEND/REQUEST, for its message event. */
export interface ResolutionInfo {
  resolution: IncomingResolution;
  /** The first forward's target, when forwarded. */
  forwardedTo: string | undefined;
  /** The handler's run time, ms. */
  resolutionMs: number;
}

/** What an {@link EnvelopeRecorder} keeps: by count (the spec's 200) and by estimated bytes. */
export interface EnvelopeRecorderLimits {
  maxEntries: number;
  maxBytes: number;
  /** Longer string fields are cut to this many characters (plus '…'); `ids` share one such budget. */
  maxFieldChars: number;
}

/** V8's per-object and per-field overhead of a recorded event, roughly (measured: ~150 B for a short ACK). */
const ENTRY_OVERHEAD_BYTES = 160;

const STRING_FIELDS = ['cmid', 'smid', 'eid', 'tid', 'desc'] as const;

const INITIATED = new Set(['SEND', 'REQUEST', 'PUB']);

/** Receipts kept for answer timings (ids of up to 64 characters): ~27 KB at most per connection. */
const MAX_RECEIPTS = 128;

/**
 * SEND/REQUESTs waiting for their resolution, at most; more are reported at once. Above the in-flight limit per
 * connection (64) and the REAUTH hold (100), so normally none is. They hold no copies: the envelope is held anyway.
 */
const MAX_AWAITING = 256;

/** A client SEND/REQUEST whose event waits for its incoming handler's resolution. */
interface Awaiting {
  event: MessageEvent;
  kept: MessageEvent | undefined;
  listening: boolean;
}

/**
 * The last N envelopes of a connection, both directions, for introspection (docs/protocol.md section 12: last 200),
 * and the source of message events, with the reference's metadata (see {@link MessageEvent}). `msg` and `auth` are
 * never recorded. The fields are client-controlled (a 4 MiB `tid` is a valid SEND), so the kept copy is also
 * bounded in bytes: long fields are cut and the oldest entries dropped until the estimate fits. Message listeners
 * get the envelope's fields uncut.
 *
 * A client SEND/REQUEST is kept at once (its place in the order) but reported to listeners when
 * {@link resolved} is called for its cmid (after its incoming handler ran, as the reference does), or when the
 * connection ends ({@link flush}). The receipts for `incomingTimestamp`/`roundTripMs` and the SEND/REQUESTs
 * waiting for their resolution are bounded too (docs/security.md, "Limits and their defaults").
 */
export class EnvelopeRecorder {
  readonly #limits: EnvelopeRecorderLimits;
  readonly #timings: AnswerTimings;
  readonly #awaiting = new Map<string, Awaiting>();
  /** The kept entries from `#head` on (dropped ones are cleared and skipped, compacted now and then). */
  #entries: ({ event: MessageEvent; bytes: number } | undefined)[] = [];
  #head = 0;
  #bytes = 0;

  constructor(limits: EnvelopeRecorderLimits) {
    this.#limits = limits;
    this.#timings = new AnswerTimings(MAX_RECEIPTS);
  }

  record(
    direction: 'in' | 'out',
    envelopes: readonly RecordableEnvelope[],
    conn: RecordableConnection,
  ): void {
    const core = conn.core;
    const listening = core.events.hasListeners('message');
    const keeping = this.#limits.maxEntries > 0 && this.#limits.maxBytes > 0;
    if (!keeping && !listening) return;
    const timestamp = core.now();
    const perf = performance.now();
    for (const e of envelopes) {
      const event: MessageEvent = {
        direction,
        sessionId: conn.sessionId,
        connectionId: conn.connectionId,
        timestamp,
        nodeName: core.options.nodeName,
        t: e.t,
      };
      for (const field of STRING_FIELDS) {
        const value = e[field];
        if (typeof value === 'string') event[field] = value;
      }
      if (Array.isArray(e.ids)) event.ids = e.ids.map(String);
      if (direction === 'in') this.#timings.received(e, { ts: timestamp, perf });
      else {
        const answered = this.#timings.answered(e);
        if (answered) {
          event.incomingTimestamp = answered.ts;
          event.roundTripMs = perf - answered.perf;
        }
        const initiation = INITIATED.has(e.t) ? initiationOf(e) : undefined;
        if (initiation) {
          event.initiatedTimestamp = initiation.ts;
          event.initiatedNodeName = initiation.nodeName;
        }
      }
      const kept = keeping ? this.#keep(event) : undefined;
      if (direction === 'in' && (e.t === 'SEND' || e.t === 'REQUEST') && typeof e.cmid === 'string') {
        if (this.#await(e.cmid, { event, kept, listening }, conn)) continue;
      }
      if (listening) core.events.emit('message', event);
    }
  }

  /**
   * The incoming handler of the client SEND/REQUEST `cmid` is done (`info` undefined: it did not run, e.g. a
   * duplicate or a refusal): completes its recorded entry and reports its event. Later calls for the cmid do nothing.
   */
  resolved(cmid: string, info: ResolutionInfo | undefined, conn: RecordableConnection): void {
    const awaiting = this.#awaiting.get(cmid);
    if (!awaiting) return;
    this.#awaiting.delete(cmid);
    if (info) {
      for (const event of [awaiting.event, awaiting.kept]) {
        if (!event) continue;
        event.resolution = info.resolution;
        event.resolutionMs = info.resolutionMs;
        if (info.forwardedTo !== undefined) {
          event.forwardedTo =
            event === awaiting.kept
              ? detachedPrefix(info.forwardedTo, this.#limits.maxFieldChars)
              : info.forwardedTo;
        }
      }
    }
    if (awaiting.listening || conn.core.events.hasListeners('message')) {
      conn.core.events.emit('message', awaiting.event);
    }
  }

  /** Reports every SEND/REQUEST still waiting for its resolution (the connection ended). */
  flush(conn: RecordableConnection): void {
    for (const cmid of [...this.#awaiting.keys()]) this.resolved(cmid, undefined, conn);
  }

  /** The recorded envelopes, oldest first. */
  entries(): readonly MessageEvent[] {
    return this.#entries.slice(this.#head).map((entry) => entry!.event);
  }

  /** Estimated bytes held (UTF-16 string payloads plus a per-entry overhead). */
  get bytes(): number {
    return this.#bytes;
  }

  /** Parks a SEND/REQUEST until {@link resolved}; false when it is reported at once (too many waiting). */
  #await(cmid: string, awaiting: Awaiting, conn: RecordableConnection): boolean {
    // The same cmid again on this connection (a resend while the first is still handled): report the first now.
    if (this.#awaiting.has(cmid)) this.resolved(cmid, undefined, conn);
    if (this.#awaiting.size >= MAX_AWAITING) return false;
    this.#awaiting.set(cmid, awaiting);
    return true;
  }

  #keep(event: MessageEvent): MessageEvent {
    const max = this.#limits.maxFieldChars;
    const kept: MessageEvent = { ...event };
    let chars = kept.t.length + (kept.sessionId?.length ?? 0) + kept.connectionId.length;
    for (const field of STRING_FIELDS) {
      const value = kept[field];
      if (value === undefined) continue;
      if (value.length > max) kept[field] = detachedPrefix(value, max, '…');
      chars += kept[field]!.length;
    }
    if (kept.ids) {
      const ids: string[] = [];
      let budget = max;
      for (const id of kept.ids) {
        if (id.length > budget) break;
        ids.push(id);
        budget -= id.length;
      }
      kept.ids = ids;
      chars += max - budget;
    }
    // Node names and forward targets are the server's own, short strings: covered by the overhead.
    const bytes = ENTRY_OVERHEAD_BYTES + 2 * chars;
    const entries = this.#entries;
    entries.push({ event: kept, bytes });
    this.#bytes += bytes;
    // Oldest first out, without copying the list per envelope (a busy connection records every frame).
    while (
      entries.length - this.#head > 1 &&
      (entries.length - this.#head > this.#limits.maxEntries || this.#bytes > this.#limits.maxBytes)
    ) {
      this.#bytes -= entries[this.#head]!.bytes;
      entries[this.#head++] = undefined;
    }
    if (this.#head > 64 && this.#head * 2 > entries.length) {
      this.#entries = entries.slice(this.#head);
      this.#head = 0;
    }
    return kept;
  }
}
