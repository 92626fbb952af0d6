/**
 * Counts redeliveries where the broker does not. RabbitMQ sets `x-delivery-count` only on quorum queues; the
 * classic exclusive queues behind topic subscriptions say no more than `redelivered: true`. Without a count, a
 * subscriber that fails on a message would be given it forever (attempt 1 every time, never dead-lettered), and
 * the queue would deliver nothing else. Such a queue belongs to one consumer of this process, so a redelivery
 * comes back here and a count in memory is exact; it is lost with the process, as is the queue itself.
 *
 * Bounded: past `maxEntries` messages tracked at once, the oldest are forgotten (they start counting again).
 * @internal
 */
export class RedeliveryCounter {
  private readonly counts = new Map<string, number>();
  private readonly maxEntries: number;

  constructor(maxEntries = 10_000) {
    this.maxEntries = maxEntries;
  }

  /**
   * The delivery count of a delivery: the broker's when it gave one (or for a first delivery), else one more
   * than the last time this message of this queue came.
   */
  count(queue: string, messageId: string, brokerCount: number, redelivered: boolean): number {
    if (brokerCount > 0 || !redelivered) return brokerCount;
    const key = `${queue}\u0000${messageId}`;
    const count = (this.counts.get(key) ?? 0) + 1;
    // Delete first so the entry moves to the end: the Map's order is the eviction order.
    this.counts.delete(key);
    this.counts.set(key, count);
    if (this.counts.size > this.maxEntries) {
      const oldest = this.counts.keys().next().value;
      if (oldest !== undefined) this.counts.delete(oldest);
    }
    return count;
  }

  /** Messages being counted now. */
  get size(): number {
    return this.counts.size;
  }
}
