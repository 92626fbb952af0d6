import { ErrorCode, TransportError } from '../errors.ts';
import { BaseTransport } from './BaseTransport.ts';
import type { InMemoryBroker, PublishOutcome } from './InMemoryBroker.ts';
import type { InMemoryChannel } from './InMemoryChannel.ts';
import type { InMemoryConnection } from './InMemoryConnection.ts';
import type { ActiveConsumer, ManagedConsumer } from './ManagedConsumer.ts';
import type { MessageProperties, OutgoingMessage } from './Transport.ts';
import { TransportDelivery } from './TransportDelivery.ts';
import { resolveTransportOptions, type TransportOptions } from './TransportOptions.ts';

/** Options of {@link InMemoryTransport}: the common {@link TransportOptions}. */
export type InMemoryTransportOptions = TransportOptions;

/**
 * One node's connections to an {@link InMemoryBroker}: the embedded default transport, with the same observable
 * semantics as {@link AmqpTransport} (a consume and a publish connection, a channel per consumer, queues asserted
 * before the first publish per connection generation, reconnect after the broker drops the connection).
 */
export class InMemoryTransport extends BaseTransport {
  readonly broker: InMemoryBroker;
  private consumeConnection: InMemoryConnection | undefined;
  private publishConnection: InMemoryConnection | undefined;
  private publishChannel: InMemoryChannel | undefined;

  constructor(broker: InMemoryBroker, options: InMemoryTransportOptions) {
    super(resolveTransportOptions(options));
    this.broker = broker;
  }

  protected async openConnections(generation: number): Promise<void> {
    this.asserted = new Set();
    const consume = await this.broker.connect(`${this.name}-consume`);
    this.consumeConnection = consume;
    consume.on('close', (error) => this.connectionLost(generation, error));
    const publish = await this.broker.connect(`${this.name}-publish`);
    this.publishConnection = publish;
    publish.on('close', (error) => this.connectionLost(generation, error));
    publish.on('blocked', (reason) => {
      if (this.isCurrent(generation)) this.emit('transport:blocked', { reason });
    });
    publish.on('unblocked', () => {
      if (this.isCurrent(generation)) this.emit('transport:unblocked');
    });
    const channel = await publish.createChannel();
    this.publishChannel = channel;
    await channel.assertExchange(this.options.exchange);
  }

  protected async closeConnections(): Promise<void> {
    const connections = [this.consumeConnection, this.publishConnection];
    this.consumeConnection = undefined;
    this.publishConnection = undefined;
    this.publishChannel = undefined;
    for (const c of connections) await c?.close();
  }

  protected async assertQueueConnected(queue: string): Promise<void> {
    const generation = this.generation;
    const connection = this.publishConnection;
    if (!connection) throw this.unavailable();
    // A throw-away channel: a 406 on a mismatching declare closes it, not the publish channel.
    const channel = await connection.createChannel();
    try {
      await channel.assertQueue(queue, { kind: 'quorum' });
      if (generation === this.generation) this.asserted.add(queue);
    } finally {
      await channel.close();
    }
  }

  protected async publishConnected(messages: readonly OutgoingMessage[]): Promise<void> {
    let batch = messages;
    const unasserted = new Set<string>();
    for (const m of messages) {
      if (m.target.kind === 'queue' && !this.asserted.has(m.target.name)) unasserted.add(m.target.name);
    }
    if (unasserted.size > 0) {
      // Copy before awaiting the declares: the caller may reuse its buffers once publish() returned.
      batch = messages.map((m) => ({ ...m, body: Buffer.from(m.body) }));
      for (const queue of unasserted) await this.assertQueueShared(queue);
    }
    const channel = this.publishChannel;
    if (!channel?.open) throw this.unavailable();
    const confirms = batch.map((m) => {
      const toQueue = m.target.kind === 'queue';
      return channel
        .publish(
          toQueue ? '' : this.options.exchange,
          m.target.name,
          m.body,
          wireProperties(m.properties),
          toQueue,
        )
        .then(
          (outcome) => checkOutcome(outcome, m),
          (error: unknown) => {
            throw new TransportError(
              ErrorCode.TRANSPORT_UNAVAILABLE,
              `publish to '${m.target.name}' not confirmed`,
              {
                cause: error,
              },
            );
          },
        );
    });
    const results = await Promise.allSettled(confirms);
    const failure = results.find((r) => r.status === 'rejected');
    if (failure) throw failure.reason;
  }

  protected async startConsumer(consumer: ManagedConsumer, generation: number): Promise<ActiveConsumer> {
    const connection = this.consumeConnection;
    if (!connection) throw this.unavailable();
    const channel = await connection.createChannel();
    let cancelled = false;
    let unacked = 0;
    const closeIfDone = (): void => {
      if (cancelled && unacked === 0) void channel.close();
    };
    channel.on('close', (error) => {
      if (!cancelled) {
        this.consumerLost(
          consumer,
          generation,
          error ?? new TransportError(ErrorCode.TRANSPORT_CHANNEL_CLOSED, `consumer channel closed`),
        );
      }
    });
    try {
      let queue = consumer.source.name;
      if (consumer.source.kind === 'queue') {
        await channel.assertQueue(queue, { kind: 'quorum' });
      } else {
        queue = await channel.assertQueue('', { exclusive: true, autoDelete: true });
        await channel.bindQueue(queue, this.options.exchange, consumer.source.name);
      }
      const consumerTag = await channel.consume(queue, {
        prefetch: consumer.prefetch,
        priority: consumer.priority,
        onDelivery: (d) => {
          unacked++;
          let done = false;
          const settle = (op: () => void): void => {
            // Stale (the channel closed: the broker requeued it) or repeated: the channel decides.
            if (!channel.open) return;
            if (!done) {
              done = true;
              unacked--;
            }
            op();
            closeIfDone();
          };
          this.dispatch(
            consumer,
            new TransportDelivery(
              consumer.source.name,
              d.body,
              d.properties,
              this.deliveryCountOf(consumer, d.properties.messageId, d.deliveryCount, d.redelivered),
              d.redelivered,
              {
                ack: () => settle(() => channel.ack(d.deliveryTag)),
                reject: (requeue) => settle(() => channel.reject(d.deliveryTag, requeue)),
              },
            ),
          );
        },
        onCancel: () => {
          if (cancelled) return;
          cancelled = true;
          void channel.close();
          this.consumerLost(
            consumer,
            generation,
            new TransportError(
              ErrorCode.TRANSPORT_CHANNEL_CLOSED,
              `consumer of '${queue}' cancelled by the broker`,
            ),
          );
        },
      });
      return {
        cancel: async () => {
          if (cancelled) return;
          cancelled = true;
          // Unacked deliveries may still be settled; the channel closes once they are (or with the connection).
          if (channel.open) await channel.cancel(consumerTag).catch(() => {});
          closeIfDone();
        },
      };
    } catch (error) {
      cancelled = true;
      await channel.close();
      throw error;
    }
  }

  private unavailable(): TransportError {
    return new TransportError(ErrorCode.TRANSPORT_UNAVAILABLE, `transport '${this.name}' is not connected`);
  }
}

/** The properties as they arrive after an AMQP round trip: timestamp in whole seconds. */
function wireProperties(p: MessageProperties): MessageProperties {
  return p.timestamp === undefined ? p : { ...p, timestamp: Math.floor(p.timestamp / 1000) * 1000 };
}

function checkOutcome(outcome: PublishOutcome, m: OutgoingMessage): void {
  if (outcome === 'nack') {
    throw new TransportError(ErrorCode.TRANSPORT_NACKED, `broker nacked publish to '${m.target.name}'`);
  }
  if (outcome === 'returned') {
    throw new TransportError(
      ErrorCode.TRANSPORT_UNROUTABLE,
      `no queue '${m.target.name}' (mandatory publish returned)`,
    );
  }
}
