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
 * within `delayMs` goes out in one frame; but never later than `maxDelayMs` after the oldest queued envelope, so a
 * client that keeps enqueueing faster than the debounce is not held back until it pauses (the official client's
 * pure debounce is). After a quiet spell (nothing sent for `delayMs`), what is enqueued goes at the end of the
 * current turn instead: a lone request has nobody to share its frame with, and the debounce would be pure latency.
 */
export class Pipeline {
  private readonly delayMs: number;
  private readonly maxDelayMs: number;
  private readonly onDue: () => void;
  private readonly now: () => number;
  private pre: C2SEnvelope[] = [];
  private items: PipelineItem[] = [];
  private timer: Timer | undefined;
  /** When the oldest envelope still queued was enqueued (`now()`), if any. */
  private oldestAt: number | undefined;
  /** When the pipeline was last drained (`now()`). */
  private drainedAt = -Infinity;

  constructor(delayMs: number, onDue: () => void, maxDelayMs = Infinity, now: () => number = Date.now) {
    this.delayMs = delayMs;
    this.maxDelayMs = maxDelayMs;
    this.onDue = onDue;
    this.now = now;
  }

  get empty(): boolean {
    return this.pre.length === 0 && this.items.length === 0;
  }

  enqueue(envelope: C2SEnvelope, tracked?: Tracked): void {
    if (tracked) tracked.queued = true;
    this.items.push(tracked ? { envelope, tracked } : { envelope });
    this.oldestAt ??= this.now();
    this.schedule();
  }

  enqueuePre(envelope: C2SEnvelope): void {
    this.pre.push(envelope);
    this.oldestAt ??= this.now();
    this.schedule();
  }

  /** Puts envelopes at the front of the pre-pipeline (HELLO and the subscriptions that go with it). */
  prependPre(envelopes: readonly C2SEnvelope[]): void {
    this.pre = [...envelopes, ...this.pre];
  }

  schedule(): void {
    this.cancelTimer();
    const now = this.now();
    const held = this.oldestAt === undefined ? 0 : now - this.oldestAt;
    const quiet = this.oldestAt !== undefined && this.oldestAt - this.drainedAt >= this.delayMs;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.onDue();
      },
      quiet ? 0 : Math.max(0, Math.min(this.delayMs, this.maxDelayMs - held)),
    );
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
    this.oldestAt = undefined;
  }

  /**
   * Takes a tracked envelope out of the pipeline before it is written (its initiation timed out: sending it later
   * would make the server process what the application was told had failed). Returns whether it was queued.
   */
  remove(tracked: Tracked): boolean {
    const index = this.items.findIndex((item) => item.tracked === tracked);
    if (index < 0) return false;
    this.items.splice(index, 1);
    tracked.queued = false;
    if (this.items.length === 0 && this.pre.length === 0) {
      this.cancelTimer();
      this.oldestAt = undefined;
    }
    return true;
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
    this.drainedAt = this.now();
    const drained = { pre: this.pre, items: this.items };
    this.pre = [];
    this.items = [];
    this.oldestAt = undefined;
    return drained;
  }
}
