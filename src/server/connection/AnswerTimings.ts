/** The fields of a client or server envelope that say what it answers. */
export interface TimedEnvelope {
  t: string;
  cmid?: unknown;
  smid?: unknown;
  eid?: unknown;
  ids?: unknown;
  x?: unknown;
}

/** When a client envelope was received: epoch ms, and `performance.now()` for a fractional round trip. */
export interface Receipt {
  ts: number;
  perf: number;
}

interface Pending extends Receipt {
  /** The received type: an ACK of a REQUEST keeps the entry for the RESOLVE/REJECT that follows. */
  t: string;
}

/** Keys longer than this (client-chosen ids) are not tracked: the map stays small per entry. */
const MAX_KEY_CHARS = 64;

/**
 * Receipt times of client envelopes waiting for the server's answer, so that the answer's message event can carry
 * the reference's `icts` and `rttm` (docs/protocol.md §3 names the envelopes). What answers what:
 * HELLO → WELCOME, PING → PONG, SEND/REQUEST/RESOLVE/REJECT (by `cmid`) → ACK/NACK/RETRY and, for a REQUEST,
 * RESOLVE/REJECT, client ACK/NACK (by smid) → ACK2, SUB (by topic) → SUB_OK/SUB_LOST/SUB_NO_AUTH.
 *
 * Bounded: at most `maxEntries` (oldest forgotten first), and only ids of up to 64 characters. An answer whose
 * receipt was forgotten (or arrived on an earlier connection, as a reply from the outbox after a resume may) simply
 * has no timing.
 */
export class AnswerTimings {
  readonly #max: number;
  readonly #pending = new Map<string, Pending>();

  constructor(maxEntries: number) {
    this.#max = maxEntries;
  }

  get size(): number {
    return this.#pending.size;
  }

  received(e: TimedEnvelope, receipt: Receipt): void {
    if (this.#max <= 0) return;
    switch (e.t) {
      case 'HELLO':
        return this.#put('h', e.t, receipt);
      case 'PING':
        return this.#put(`x${String(e.x)}`, e.t, receipt);
      case 'SEND':
      case 'REQUEST':
      case 'RESOLVE':
      case 'REJECT':
        return this.#put(`c${String(e.cmid)}`, e.t, receipt);
      case 'ACK':
      case 'NACK':
        for (const id of idsOf(e, 'smid')) this.#put(`s${id}`, e.t, receipt);
        return;
      case 'SUB':
        return this.#put(`t${String(e.eid)}`, e.t, receipt);
    }
  }

  /** The receipt that `e` (written by the server) answers, if known; the earliest for an `ids` batch. */
  answered(e: TimedEnvelope): Receipt | undefined {
    if (this.#pending.size === 0) return undefined;
    switch (e.t) {
      case 'WELCOME':
        return this.#take('h');
      case 'PONG':
        return this.#take(`x${String(e.x)}`);
      case 'ACK':
        // An ACK of a REQUEST is not its last answer: the RESOLVE/REJECT still comes.
        return this.#earliest(idsOf(e, 'cmid'), 'c', (p) => p.t !== 'REQUEST');
      case 'NACK':
      case 'RETRY':
        return this.#earliest(idsOf(e, 'cmid'), 'c', () => true);
      case 'RESOLVE':
      case 'REJECT':
        return this.#take(`c${String(e.cmid)}`);
      case 'ACK2':
        return this.#earliest(idsOf(e, 'smid'), 's', () => true);
      case 'SUB_OK':
      case 'SUB_LOST':
      case 'SUB_NO_AUTH':
        return this.#take(`t${String(e.eid)}`);
      default:
        return undefined;
    }
  }

  #put(key: string, t: string, receipt: Receipt): void {
    if (key.length > MAX_KEY_CHARS) return;
    this.#pending.delete(key);
    this.#pending.set(key, { ts: receipt.ts, perf: receipt.perf, t });
    if (this.#pending.size > this.#max) {
      const oldest = this.#pending.keys().next().value;
      if (oldest !== undefined) this.#pending.delete(oldest);
    }
  }

  #take(key: string): Receipt | undefined {
    const pending = this.#pending.get(key);
    if (pending) this.#pending.delete(key);
    return pending;
  }

  #earliest(ids: string[], prefix: string, remove: (p: Pending) => boolean): Receipt | undefined {
    let earliest: Receipt | undefined;
    for (const id of ids) {
      const key = prefix + id;
      const pending = this.#pending.get(key);
      if (!pending) continue;
      if (remove(pending)) this.#pending.delete(key);
      if (!earliest || pending.perf < earliest.perf) earliest = pending;
    }
    return earliest;
  }
}

function idsOf(e: TimedEnvelope, single: 'cmid' | 'smid'): string[] {
  const ids: string[] = [];
  const one = e[single];
  if (typeof one === 'string' || typeof one === 'number') ids.push(String(one));
  if (Array.isArray(e.ids)) for (const id of e.ids) ids.push(String(id));
  return ids;
}
