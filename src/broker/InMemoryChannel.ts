import { EventEmitter } from 'node:events';
import { ErrorCode, TransportError } from '../errors.ts';
import type { InMemoryBroker, PublishOutcome } from './InMemoryBroker.ts';
import type { InMemoryConnection } from './InMemoryConnection.ts';
import type { BrokerDelivery, ConsumerEntry, QueueKind, StoredMessage } from './InMemoryQueue.ts';
import type { MessageProperties } from './Transport.ts';

export interface InMemoryChannelEventMap {
  /** The channel closed; `error` is set when the broker closed it (channel error) or the connection died. */
  close: [error: TransportError | undefined];
}

export interface ConsumeArgs {
  prefetch: number;
  /** Consumer priority, as RabbitMQ's `x-priority`. @default 0 */
  priority?: number;
  onDelivery: (delivery: BrokerDelivery) => void;
  /** The broker cancelled the consumer (its queue was deleted). */
  onCancel?: () => void;
}

export interface QueueDeclareArgs {
  /** @default 'quorum' (ignored for exclusive queues, which are classic) */
  kind?: QueueKind;
  /** Owned by this channel's connection and deleted with it. */
  exclusive?: boolean;
  /** Deleted when its last consumer is cancelled. */
  autoDelete?: boolean;
}

interface Unacked {
  readonly consumer: ConsumerEntry;
  readonly message: StoredMessage;
}

/**
 * A channel of an {@link InMemoryConnection}: the scope of delivery tags, like an AMQP channel. A channel error
 * (unknown or double ack, declare mismatch, missing queue) closes it and requeues its unacked messages.
 */
export class InMemoryChannel extends EventEmitter<InMemoryChannelEventMap> {
  readonly connection: InMemoryConnection;
  private readonly broker: InMemoryBroker;
  private readonly unacked = new Map<number, Unacked>();
  private readonly consumers = new Map<string, ConsumerEntry>();
  private readonly pendingConfirms = new Set<(error: TransportError) => void>();
  private nextTag = 1;
  private nextConsumerTag = 1;
  /** `closing`: a channel error happened; the close follows asynchronously, as from a socket. */
  private state: 'open' | 'closing' | 'closed' = 'open';

  /** @internal Created by {@link InMemoryConnection.createChannel}. */
  constructor(connection: InMemoryConnection, broker: InMemoryBroker) {
    super();
    this.connection = connection;
    this.broker = broker;
  }

  get open(): boolean {
    return this.state === 'open';
  }

  /** Number of delivered, not yet acked or rejected messages on this channel. */
  get unackedCount(): number {
    return this.unacked.size;
  }

  /** Declares a queue; `''` makes a server-named one. Rejects (and closes the channel) on a kind mismatch. */
  async assertQueue(name: string, args: QueueDeclareArgs = {}): Promise<string> {
    await this.rpc();
    return this.guard(() => this.broker.declareQueue(name, args, this.connection));
  }

  /** Declares a durable direct exchange (idempotent). */
  async assertExchange(name: string): Promise<void> {
    await this.rpc();
    this.broker.declareExchange(name);
  }

  async bindQueue(queue: string, exchange: string, routingKey: string): Promise<void> {
    await this.rpc();
    this.guard(() => this.broker.bindQueue(queue, exchange, routingKey));
  }

  async deleteQueue(name: string): Promise<void> {
    await this.rpc();
    this.broker.deleteQueue(name);
  }

  /**
   * Publishes to `exchange` (`''`: the queue named `routingKey`). Resolves with the confirm, always asynchronously:
   * `returned` for a mandatory publish nobody could take (a return, then an ack, on a real broker).
   */
  publish(
    exchange: string,
    routingKey: string,
    body: Buffer,
    properties: MessageProperties,
    mandatory: boolean,
  ): Promise<PublishOutcome> {
    if (this.state !== 'open') return Promise.reject(this.closedError());
    return new Promise<PublishOutcome>((resolve, reject) => {
      const fail = (error: TransportError): void => reject(error);
      this.pendingConfirms.add(fail);
      this.broker.publish(this, exchange, routingKey, body, properties, mandatory, (outcome) => {
        if (!this.pendingConfirms.delete(fail)) return;
        resolve(outcome);
      });
    });
  }

  /** Starts a consumer; resolves with its tag. Rejects (and closes the channel) if the queue does not exist. */
  async consume(queue: string, args: ConsumeArgs): Promise<string> {
    await this.rpc();
    const tag = `ctag-${this.nextConsumerTag++}`;
    const entry = this.guard(() =>
      this.broker.addConsumer(queue, {
        tag,
        channel: this,
        prefetch: args.prefetch,
        priority: args.priority ?? 0,
        onDelivery: args.onDelivery,
        onCancel: args.onCancel ?? (() => {}),
      }),
    );
    this.consumers.set(tag, entry);
    return tag;
  }

  /** Cancels a consumer. Its unacked deliveries stay on the channel and can still be acked. */
  async cancel(consumerTag: string): Promise<void> {
    await this.rpc();
    const entry = this.consumers.get(consumerTag);
    if (!entry) return;
    this.consumers.delete(consumerTag);
    this.broker.removeConsumer(entry);
  }

  ack(deliveryTag: number): void {
    this.settleWhenRead(deliveryTag, 'ack', 'ack');
  }

  reject(deliveryTag: number, requeue: boolean): void {
    this.settleWhenRead(deliveryTag, 'reject', requeue ? 'requeue' : 'discard');
  }

  /** `basic.nack` of one message: the same as {@link reject} here (RabbitMQ 3.10 counts both; 4.3 stops counting nacks). */
  nack(deliveryTag: number, requeue: boolean): void {
    this.reject(deliveryTag, requeue);
  }

  /** Closes the channel (client side): consumers stop, unacked messages are requeued. Idempotent. */
  close(): Promise<void> {
    this.shutdown(undefined);
    return Promise.resolve();
  }

  /** @internal Hands a message to a consumer of this channel (the broker's dispatch). */
  deliver(consumer: ConsumerEntry, message: StoredMessage): void {
    const deliveryTag = this.nextTag++;
    this.unacked.set(deliveryTag, { consumer, message });
    consumer.unacked++;
    consumer.onDelivery({
      deliveryTag,
      consumerTag: consumer.tag,
      queue: consumer.queue.name,
      body: message.body,
      properties: { ...message.properties, headers: { ...message.properties.headers } },
      // As RabbitMQ: only quorum queues carry a delivery count (x-delivery-count); classic ones say `redelivered`.
      deliveryCount: consumer.queue.kind === 'quorum' ? message.deliveryCount : 0,
      redelivered: message.redelivered,
    });
  }

  /** @internal The broker cancelled one of this channel's consumers (its queue was deleted). */
  serverCancel(entry: ConsumerEntry): void {
    if (this.consumers.get(entry.tag) !== entry) return;
    this.consumers.delete(entry.tag);
    entry.queue.removeConsumer(entry);
    setImmediate(entry.onCancel);
  }

  /** @internal Closes the channel with an error, as the broker does on a channel error or a dropped connection. */
  shutdown(error: TransportError | undefined): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    for (const entry of this.consumers.values()) this.broker.removeConsumer(entry);
    this.consumers.clear();
    // Requeue in reverse tag order so the messages end up at the head in their original order.
    const tags = [...this.unacked.keys()].sort((a, b) => b - a);
    for (const tag of tags) {
      const u = this.unacked.get(tag)!;
      this.broker.settle(u.consumer, u.message, 'return');
    }
    this.unacked.clear();
    const confirmError =
      error ??
      new TransportError(ErrorCode.TRANSPORT_CHANNEL_CLOSED, 'channel closed with unconfirmed publishes');
    for (const fail of this.pendingConfirms) fail(confirmError);
    this.pendingConfirms.clear();
    this.connection.channelClosed(this);
    this.emit('close', error);
  }

  /** An ack or reject, taken by the broker once it reads the connection again (at once unless alarm-blocked). */
  private settleWhenRead(deliveryTag: number, op: string, outcome: 'ack' | 'requeue' | 'discard'): void {
    if (this.state === 'closed') throw this.closedError();
    this.broker.whenReadable(this.connection, () => {
      // Closed while blocked: the close already returned its unacked messages to their queues.
      if (this.state === 'closed') return;
      const u = this.takeUnacked(deliveryTag, op);
      if (u) this.broker.settle(u.consumer, u.message, outcome);
    });
  }

  private takeUnacked(deliveryTag: number, op: string): Unacked | undefined {
    if (this.state === 'closed') throw this.closedError();
    // The server ignores acks that arrive after it sent the close; the close requeues them.
    if (this.state === 'closing') return undefined;
    const u = this.unacked.get(deliveryTag);
    if (!u) {
      // As RabbitMQ: 406 PRECONDITION_FAILED - unknown delivery tag, which closes the channel.
      this.fail(
        new TransportError(
          ErrorCode.TRANSPORT_CHANNEL_CLOSED,
          `PRECONDITION_FAILED - unknown delivery tag ${deliveryTag} (${op})`,
        ),
      );
      return undefined;
    }
    this.unacked.delete(deliveryTag);
    return u;
  }

  /** Runs a broker operation; a TransportError from it is a channel error that closes the channel. */
  private guard<T>(op: () => T): T {
    try {
      return op();
    } catch (error) {
      if (error instanceof TransportError) this.fail(error);
      throw error;
    }
  }

  private fail(error: TransportError): void {
    if (this.state !== 'open') return;
    this.state = 'closing';
    // The close arrives after the failing call returned, as it would from a socket.
    setImmediate(() => this.shutdown(error));
  }

  /**
   * Every channel operation is asynchronous, waits while the connection is blocked by a memory alarm (the broker
   * reads nothing from it), and fails once the channel is closed.
   */
  private async rpc(): Promise<void> {
    if (this.state !== 'open') throw this.closedError();
    await new Promise<void>((resolve) => this.broker.whenReadable(this.connection, resolve));
    await Promise.resolve();
    if (this.state !== 'open') throw this.closedError();
  }

  private closedError(): TransportError {
    return new TransportError(ErrorCode.TRANSPORT_CHANNEL_CLOSED, 'channel closed');
  }
}
