/** What a settler needs of an amqplib channel (structural: only AmqpTransport.ts imports amqplib). */
export interface SettleChannel<M> {
  ack(message: M): void;
  reject(message: M, requeue?: boolean): void;
}

/** The consumer channel a delivery came on, as its settler needs it. */
export interface ConsumerChannel<M> {
  readonly ch: SettleChannel<M>;
  /** False once the channel closed: its delivery tags are void (the broker requeued the messages). */
  isOpen(): boolean;
  /** A delivery was settled (`first`: for the first time). */
  settled(first: boolean): void;
}

/**
 * Acks or rejects one delivery on its channel; drops the call when that channel has closed. One small object per
 * delivery instead of three closures.
 * @internal
 */
export class AmqpSettler<M> {
  private readonly channel: ConsumerChannel<M>;
  private readonly msg: M;
  private done = false;

  constructor(channel: ConsumerChannel<M>, msg: M) {
    this.channel = channel;
    this.msg = msg;
  }

  ack(): void {
    if (!this.channel.isOpen()) return; // stale: a tag is only valid on its channel
    try {
      this.channel.ch.ack(this.msg);
    } catch {
      // The channel closed between the check and the call; same as stale.
    }
    this.markDone();
  }

  reject(requeue: boolean): void {
    if (!this.channel.isOpen()) return;
    try {
      // Never nack: on RabbitMQ 4.3 nack no longer increments x-delivery-count.
      this.channel.ch.reject(this.msg, requeue);
    } catch {
      // As in ack().
    }
    this.markDone();
  }

  private markDone(): void {
    // Settling twice is counted once (the broker closes the channel for the second, as documented).
    const first = !this.done;
    this.done = true;
    this.channel.settled(first);
  }
}
