import type { MessageProperties } from './Transport.ts';
import type { InMemoryChannel } from './InMemoryChannel.ts';
import type { InMemoryConnection } from './InMemoryConnection.ts';

/** A message as the in-memory broker stores it in a queue. */
export interface StoredMessage {
  readonly body: Buffer;
  readonly properties: MessageProperties;
  /** The broker's `x-delivery-count`: returns to the queue so far. */
  deliveryCount: number;
  redelivered: boolean;
  /** Epoch ms after which the message is dropped (or dead-lettered) at the head; from `properties.expiration`. */
  readonly expiresAt: number | undefined;
  /** Where it was published to (for `x-death`). */
  readonly exchange: string;
  readonly routingKey: string;
}

/** What a consumer is handed. */
export interface BrokerDelivery {
  readonly deliveryTag: number;
  readonly consumerTag: string;
  readonly queue: string;
  readonly body: Buffer;
  readonly properties: MessageProperties;
  readonly deliveryCount: number;
  readonly redelivered: boolean;
}

/** A consumer registered on a queue through a channel. */
export interface ConsumerEntry {
  readonly tag: string;
  readonly channel: InMemoryChannel;
  readonly queue: InMemoryQueue;
  readonly prefetch: number;
  /** Higher first (RabbitMQ's consumer priorities). */
  readonly priority: number;
  unacked: number;
  readonly onDelivery: (delivery: BrokerDelivery) => void;
  /** The broker cancelled the consumer (its queue was deleted). */
  readonly onCancel: () => void;
}

export type QueueKind = 'quorum' | 'classic';

/** A named FIFO queue of the in-memory broker: a deque of ready messages plus its consumers. */
export class InMemoryQueue {
  readonly name: string;
  readonly kind: QueueKind;
  /** The connection owning an exclusive queue; it vanishes with it. */
  readonly owner: InMemoryConnection | undefined;
  /** Deleted when its last consumer is cancelled (server-named subscription queues). */
  readonly autoDelete: boolean;
  readonly consumers: ConsumerEntry[] = [];
  private items: StoredMessage[] = [];
  private head = 0;
  private nextConsumer = 0;

  constructor(name: string, kind: QueueKind, owner: InMemoryConnection | undefined, autoDelete: boolean) {
    this.name = name;
    this.kind = kind;
    this.owner = owner;
    this.autoDelete = autoDelete;
  }

  /** Ready messages (not counting those delivered and unacked). */
  get depth(): number {
    return this.items.length - this.head;
  }

  push(message: StoredMessage): void {
    this.items.push(message);
  }

  /** Puts a message back at the head (a message of a closed channel keeps its place). */
  unshift(message: StoredMessage): void {
    if (this.head > 0) this.items[--this.head] = message;
    else this.items.unshift(message);
  }

  peek(): StoredMessage | undefined {
    return this.head < this.items.length ? this.items[this.head] : undefined;
  }

  shift(): StoredMessage | undefined {
    if (this.head >= this.items.length) return undefined;
    const message = this.items[this.head];
    this.items[this.head++] = undefined as unknown as StoredMessage;
    // Compact now and then so a long-lived queue does not keep a growing array of holes.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return message;
  }

  /** Removes every ready message. */
  clear(): StoredMessage[] {
    const all = this.items.slice(this.head);
    this.items = [];
    this.head = 0;
    return all;
  }

  /**
   * The next consumer with room under its prefetch, as RabbitMQ picks it: among those of the highest priority that
   * have room, round robin; undefined if all are full.
   */
  pickConsumer(): ConsumerEntry | undefined {
    const n = this.consumers.length;
    let best: number | undefined;
    for (let i = 0; i < n; i++) {
      const index = (this.nextConsumer + i) % n;
      const c = this.consumers[index]!;
      if (c.unacked < c.prefetch && (best === undefined || c.priority > this.consumers[best]!.priority)) {
        best = index;
      }
    }
    if (best === undefined) return undefined;
    this.nextConsumer = (best + 1) % n;
    return this.consumers[best];
  }

  removeConsumer(entry: ConsumerEntry): void {
    const i = this.consumers.indexOf(entry);
    if (i >= 0) this.consumers.splice(i, 1);
  }
}
