import { randomBytes } from 'node:crypto';
import type { Delivery, OutgoingMessage, PublishTarget } from '../../../src/broker/Transport.ts';

/** Polls `predicate` every 5 ms until true; rejects after `timeoutMs`. */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Lets `ms` of wall-clock time pass: only for asserting that something does NOT happen, or for TTLs. */
export function elapse(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A handler that records deliveries (optionally acking them) and lets a test wait for a count. */
export interface Collector {
  handler: (delivery: Delivery) => void;
  deliveries: Delivery[];
  /** Resolves with the deliveries once at least `n` arrived. */
  waitFor(n: number, timeoutMs?: number): Promise<Delivery[]>;
}

export function collector(options: { autoAck?: boolean } = {}): Collector {
  const deliveries: Delivery[] = [];
  return {
    deliveries,
    handler(d) {
      deliveries.push(d);
      if (options.autoAck) d.ack();
    },
    async waitFor(n, timeoutMs = 5000) {
      await waitFor(() => deliveries.length >= n, timeoutMs, `${n} deliveries (have ${deliveries.length})`);
      return deliveries;
    },
  };
}

export function uniqueId(): string {
  return randomBytes(6).toString('hex');
}

/** A message with the given body text and message id. */
export function message(
  target: PublishTarget,
  text: string,
  extra: Partial<OutgoingMessage['properties']> = {},
): OutgoingMessage {
  return {
    target,
    body: Buffer.from(text),
    properties: { messageId: extra.messageId ?? uniqueId(), persistent: true, headers: {}, ...extra },
  };
}

export function toQueue(name: string): PublishTarget {
  return { kind: 'queue', name };
}

export function toTopic(name: string): PublishTarget {
  return { kind: 'topic', name };
}

/** Asserts that `p` rejects, returning the error for class/code assertions. */
export async function rejectionOf(p: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await p;
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error('expected the promise to reject, but it resolved');
}
