import type { MessageEvent } from '../ServerEvents.ts';

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

/**
 * The last N envelopes of a connection, both directions, for introspection (docs/protocol.md section 12: last 200),
 * and the source of message events. `msg` and `auth` are never recorded.
 */
export class EnvelopeRecorder {
  readonly #max: number;
  #entries: MessageEvent[] = [];

  constructor(max: number) {
    this.#max = max;
  }

  record(
    direction: 'in' | 'out',
    envelopes: readonly RecordableEnvelope[],
    conn: RecordableConnection,
  ): void {
    const listening = conn.core.events.hasListeners('message');
    if (this.#max === 0 && !listening) return;
    const timestamp = conn.core.now();
    for (const e of envelopes) {
      const event: MessageEvent = {
        direction,
        sessionId: conn.sessionId,
        connectionId: conn.connectionId,
        timestamp,
        t: e.t,
      };
      if (typeof e.cmid === 'string') event.cmid = e.cmid;
      if (typeof e.smid === 'string') event.smid = e.smid;
      if (typeof e.eid === 'string') event.eid = e.eid;
      if (typeof e.tid === 'string') event.tid = e.tid;
      if (Array.isArray(e.ids)) event.ids = e.ids.map(String);
      if (typeof e.desc === 'string') event.desc = e.desc;
      if (this.#max > 0) this.#entries.push(event);
      if (listening) conn.core.events.emit('message', event);
    }
    if (this.#entries.length > this.#max) this.#entries = this.#entries.slice(-this.#max);
  }

  /** The recorded envelopes, oldest first. */
  entries(): readonly MessageEvent[] {
    return this.#entries;
  }
}
