import { serverInitiatedDebugAtWrite, stampDebugAtWrite } from '../../protocol/debugOptions.ts';
import type { DebugInfo } from '../../protocol/envelopes.ts';
import { markInitiated } from './initiationOf.ts';

/** An envelope the server sends from memory (not from the outbox): ACK, NACK, ACK2, RETRY, SUB_*, PUB, ... */
export interface OutEnvelope {
  t: string;
  cmid?: string;
  smid?: string;
  ids?: string[];
  desc?: string;
  debug?: DebugInfo;
  [field: string]: unknown;
}

/**
 * How the `debug` field is finished at write time (docs/protocol.md section 5): `reply` adds `mscts`/`mscnn` per its
 * `resd` (insta replies); `serverInitiated` applies the session's S2C options (PUB).
 */
export type DebugStamp = 'none' | 'reply' | 'serverInitiated';

export interface EnqueueOptions {
  stamp?: DebugStamp;
  /** An ACK for a REQUEST: dropped if a RESOLVE/REJECT for the same cmid is written first (section 8.6). */
  elidable?: boolean;
}

interface Pending {
  envelope: OutEnvelope;
  due: number;
  stamp: DebugStamp;
  elidable: boolean;
}

/** What the queue needs from its connection. */
export interface OutgoingQueueSink {
  /** Writes one frame of envelopes (already folded and stamped). */
  writeEnvelopes(envelopes: OutEnvelope[]): void;
  /** The session's current S2C debug options (for PUB). */
  s2cDebugOptions(): number;
  readonly nodeName: string;
  now(): number;
}

/**
 * Per-connection coalescing of the envelopes the server sends from memory (docs/protocol.md section 11): each is
 * scheduled with its minimum delay; when the earliest is due, **every** pending envelope goes out in one frame.
 * Before writing, ACKs without `desc` are folded into one ACK (`cmid` for one id, `ids` for several), likewise
 * NACKs and ACK2s (`smid`/`ids`). A delay of 0 still waits for a later event-loop turn, so an answer is never
 * written in the same turn as its receipt.
 */
export class OutgoingQueue {
  readonly #sink: OutgoingQueueSink;
  #pending: Pending[] = [];
  #timer: NodeJS.Timeout | undefined;
  #timerDue = Infinity;
  #closed = false;

  constructor(sink: OutgoingQueueSink) {
    this.#sink = sink;
  }

  /** Number of envelopes waiting. */
  get size(): number {
    return this.#pending.length;
  }

  enqueue(envelope: OutEnvelope, delayMs: number, options: EnqueueOptions = {}): void {
    if (this.#closed) return;
    const due = this.#sink.now() + delayMs;
    this.#pending.push({
      envelope,
      due,
      stamp: options.stamp ?? 'none',
      elidable: options.elidable ?? false,
    });
    if (due < this.#timerDue) this.#schedule(due, delayMs);
  }

  /** Drops a pending elidable ACK for `cmid`: its RESOLVE/REJECT is being written first. */
  elideAck(cmid: string): void {
    const before = this.#pending.length;
    this.#pending = this.#pending.filter(
      (p) => !(p.elidable && p.envelope.t === 'ACK' && p.envelope.cmid === cmid),
    );
    if (this.#pending.length === 0 && before > 0) this.#cancelTimer();
  }

  /** Writes everything pending now. */
  flush(): void {
    this.#cancelTimer();
    if (this.#pending.length === 0 || this.#closed) return;
    const batch = this.#pending;
    this.#pending = [];
    const now = this.#sink.now();
    const envelopes = fold(batch).map((p) => this.#stamp(p, now));
    this.#sink.writeEnvelopes(envelopes);
  }

  /** Drops everything and stops the timer (the connection is gone). */
  close(): void {
    this.#closed = true;
    this.#pending = [];
    this.#cancelTimer();
  }

  #stamp(p: Pending, now: number): OutEnvelope {
    if (p.stamp === 'none') return p.envelope;
    const debug =
      p.stamp === 'reply'
        ? stampDebugAtWrite(p.envelope.debug, this.#sink.nodeName, now)
        : serverInitiatedDebugAtWrite(
            p.envelope.debug,
            this.#sink.s2cDebugOptions(),
            this.#sink.nodeName,
            now,
          );
    const { debug: _old, ...rest } = p.envelope;
    const stamped = debug === undefined ? rest : { ...rest, debug };
    if (p.stamp === 'serverInitiated') markInitiated(stamped, p.envelope.debug);
    return stamped;
  }

  #schedule(due: number, delayMs: number): void {
    this.#cancelTimer();
    this.#timerDue = due;
    this.#timer = setTimeout(() => this.flush(), Math.max(0, delayMs));
  }

  #cancelTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerDue = Infinity;
  }
}

const foldable = new Set(['ACK', 'NACK', 'ACK2']);

/** Folds desc-less ACKs, NACKs and ACK2s into one envelope each, at the position of the first of its kind. */
function fold(batch: Pending[]): Pending[] {
  const ids = new Map<string, string[]>();
  const out: Pending[] = [];
  for (const p of batch) {
    const e = p.envelope;
    if (!foldable.has(e.t) || e.desc !== undefined) {
      out.push(p);
      continue;
    }
    const idsOfEnvelope = e.ids ?? [(e.t === 'ACK2' ? e.smid : e.cmid) ?? ''];
    let list = ids.get(e.t);
    if (!list) {
      list = [];
      ids.set(e.t, list);
      out.push({ ...p, envelope: { t: e.t } });
    }
    list.push(...idsOfEnvelope);
  }
  for (const p of out) {
    const list = ids.get(p.envelope.t);
    if (!list || p.envelope.cmid !== undefined || p.envelope.smid !== undefined || p.envelope.ids) continue;
    const unique = [...new Set(list)];
    if (unique.length === 1) p.envelope[p.envelope.t === 'ACK2' ? 'smid' : 'cmid'] = unique[0]!;
    else p.envelope.ids = unique;
  }
  return out;
}
