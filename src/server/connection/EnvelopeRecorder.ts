import type { MessageEvent } from '../ServerEvents.ts';
import { detachedPrefix } from '../../util/detachedPrefix.ts';

interface RecordableConnection {
  readonly sessionId: string | undefined;
  readonly connectionId: string;
  readonly core: {
    now(): number;
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

/**
 * The last N envelopes of a connection, both directions, for introspection (docs/protocol.md section 12: last 200),
 * and the source of message events. `msg` and `auth` are never recorded. The fields are client-controlled (a
 * 4 MiB `tid` is a valid SEND), so the kept copy is also bounded in bytes: long fields are cut and the oldest
 * entries dropped until the estimate fits. Message listeners get the envelope's fields uncut.
 */
export class EnvelopeRecorder {
  readonly #limits: EnvelopeRecorderLimits;
  #entries: { event: MessageEvent; bytes: number }[] = [];
  #bytes = 0;

  constructor(limits: EnvelopeRecorderLimits) {
    this.#limits = limits;
  }

  record(
    direction: 'in' | 'out',
    envelopes: readonly RecordableEnvelope[],
    conn: RecordableConnection,
  ): void {
    const listening = conn.core.events.hasListeners('message');
    const keeping = this.#limits.maxEntries > 0 && this.#limits.maxBytes > 0;
    if (!keeping && !listening) return;
    const timestamp = conn.core.now();
    for (const e of envelopes) {
      const event: MessageEvent = {
        direction,
        sessionId: conn.sessionId,
        connectionId: conn.connectionId,
        timestamp,
        t: e.t,
      };
      for (const field of STRING_FIELDS) {
        const value = e[field];
        if (typeof value === 'string') event[field] = value;
      }
      if (Array.isArray(e.ids)) event.ids = e.ids.map(String);
      if (keeping) this.#keep(event);
      if (listening) conn.core.events.emit('message', event);
    }
  }

  /** The recorded envelopes, oldest first. */
  entries(): readonly MessageEvent[] {
    return this.#entries.map((entry) => entry.event);
  }

  /** Estimated bytes held (UTF-16 string payloads plus a per-entry overhead). */
  get bytes(): number {
    return this.#bytes;
  }

  #keep(event: MessageEvent): void {
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
    const bytes = ENTRY_OVERHEAD_BYTES + 2 * chars;
    this.#entries.push({ event: kept, bytes });
    this.#bytes += bytes;
    let drop = 0;
    while (
      this.#entries.length - drop > 1 &&
      (this.#entries.length - drop > this.#limits.maxEntries || this.#bytes > this.#limits.maxBytes)
    ) {
      this.#bytes -= this.#entries[drop]!.bytes;
      drop++;
    }
    if (drop > 0) this.#entries = this.#entries.slice(drop);
  }
}
