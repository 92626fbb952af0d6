import type { C2SEnvelope } from '../protocol/envelopes.ts';
import type { Tracked } from './Outbox.ts';

type Timer = ReturnType<typeof setTimeout>;

/** One envelope waiting to be sent, with the send bookkeeping of information-bearing ones. */
export interface PipelineItem {
  envelope: C2SEnvelope;
  tracked?: Tracked;
}

/**
 * The client's send queues, like the official client's: the pre-pipeline (HELLO, SUB, UNSUB), sent as its own
 * frame first, and the pipeline of everything else. Enqueueing (re)arms a debounce timer, so what is enqueued
 * within `delayMs` goes out in one frame.
 */
export class Pipeline {
  private readonly delayMs: number;
  private readonly onDue: () => void;
  private pre: C2SEnvelope[] = [];
  private items: PipelineItem[] = [];
  private timer: Timer | undefined;

  constructor(delayMs: number, onDue: () => void) {
    this.delayMs = delayMs;
    this.onDue = onDue;
  }

  get empty(): boolean {
    return this.pre.length === 0 && this.items.length === 0;
  }

  enqueue(envelope: C2SEnvelope, tracked?: Tracked): void {
    if (tracked) tracked.queued = true;
    this.items.push(tracked ? { envelope, tracked } : { envelope });
    this.schedule();
  }

  enqueuePre(envelope: C2SEnvelope): void {
    this.pre.push(envelope);
    this.schedule();
  }

  /** Puts envelopes at the front of the pre-pipeline (HELLO and the subscriptions that go with it). */
  prependPre(envelopes: readonly C2SEnvelope[]): void {
    this.pre = [...envelopes, ...this.pre];
  }

  schedule(): void {
    this.cancelTimer();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.onDue();
    }, this.delayMs);
  }

  cancelTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** SUB/UNSUB belong to a connection; after it is gone the next HELLO carries every subscription. */
  clearPre(): void {
    this.pre = [];
  }

  clear(): void {
    this.cancelTimer();
    this.pre = [];
    this.items = [];
  }

  /** Puts `auth` on the last envelope of the pipeline (a copy: stored envelopes stay as they are), or adds AUTH. */
  attachAuthorization(auth: string): void {
    const last = this.items[this.items.length - 1];
    if (last) this.items[this.items.length - 1] = { ...last, envelope: { ...last.envelope, auth } };
    else this.items.push({ envelope: { t: 'AUTH', auth } });
  }

  /** Takes everything out: the pre-pipeline frame and the pipeline frame. */
  drain(): { pre: C2SEnvelope[]; items: PipelineItem[] } {
    this.cancelTimer();
    const drained = { pre: this.pre, items: this.items };
    this.pre = [];
    this.items = [];
    return drained;
  }
}
