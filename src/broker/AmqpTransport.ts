import * as amqp from 'amqplib';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { ErrorCode, TransportError } from '../errors.ts';
import { fromAmqpProperties, toPublishOptions } from './amqpProperties.ts';
import {
  resolveAmqpTransportOptions,
  type AmqpTransportOptions,
  type ResolvedAmqpTransportOptions,
} from './AmqpTransportOptions.ts';
import { AmqpSettler, type ConsumerChannel } from './AmqpSettler.ts';
import { BaseTransport } from './BaseTransport.ts';
import { toError } from './OutstandingPublishes.ts';
import { amqpSocketOf, coalesceWrites } from './coalesceWrites.ts';
import { directPublisher, encodePublishesDirectly } from './directPublish.ts';
import type { ActiveConsumer, ManagedConsumer } from './ManagedConsumer.ts';
import { PublishChannelPool, type ConfirmOutcome } from './PublishChannelPool.ts';
import type { MessageProperties, OutgoingMessage } from './Transport.ts';
import { TransportDelivery } from './TransportDelivery.ts';

// The only file that imports amqplib (style guide: storage and broker boundaries).

const noop = (): void => {};
const QUORUM: amqp.Options.AssertQueue = { durable: true, arguments: { 'x-queue-type': 'quorum' } };

/**
 * The RabbitMQ (3.10+) transport on amqplib (docs/mats-semantics.md sections 4 and 5): a consume connection and a
 * publish connection (`<name>-consume` / `<name>-publish`, Nagle off), a channel per consumer, a pool of confirm
 * channels for publishing with mandatory queue publishes, and its own reconnect loop (see {@link BaseTransport}:
 * both connections are one unit, publishes fail fast while down, topology and consumers are re-declared after
 * every reconnect).
 */
export class AmqpTransport extends BaseTransport {
  private readonly amqpOptions: ResolvedAmqpTransportOptions;
  private consumeModel: ChannelModel | undefined;
  private publishModel: ChannelModel | undefined;
  private pool: PublishChannelPool | undefined;

  constructor(options: AmqpTransportOptions) {
    const resolved = resolveAmqpTransportOptions(options);
    super(resolved);
    this.amqpOptions = resolved;
  }

  protected async openConnections(generation: number): Promise<void> {
    this.asserted = new Set();
    this.consumeModel = await this.openConnection('consume', generation);
    const publish = await this.openConnection('publish', generation);
    this.publishModel = publish;
    publish.on('blocked', (reason: string) => {
      if (this.isCurrent(generation)) this.emit('transport:blocked', { reason });
    });
    publish.on('unblocked', () => {
      if (this.isCurrent(generation)) this.emit('transport:unblocked');
    });
    const pool = new PublishChannelPool(this.amqpOptions.maxUnconfirmedPerChannel);
    this.pool = pool;
    for (let i = 0; i < this.amqpOptions.publishChannels; i++)
      await this.addPublishChannel(publish, pool, generation);
    await withThrowawayChannel(publish, (ch) =>
      ch.assertExchange(this.options.exchange, 'direct', { durable: true }),
    );
  }

  protected async closeConnections(): Promise<void> {
    const models = [this.consumeModel, this.publishModel];
    this.consumeModel = undefined;
    this.publishModel = undefined;
    this.pool?.clear(this.unavailable());
    this.pool = undefined;
    await Promise.all(models.filter((m) => m !== undefined).map((m) => this.closeModel(m)));
  }

  protected async assertQueueConnected(queue: string): Promise<void> {
    const generation = this.generation;
    const model = this.publishModel;
    if (!model) throw this.unavailable();
    // A throw-away channel: a 406 on a mismatching declare closes it, not a publish channel.
    await withThrowawayChannel(model, (ch) => ch.assertQueue(queue, QUORUM));
    if (generation === this.generation) this.asserted.add(queue);
  }

  protected publishConnected(messages: readonly OutgoingMessage[], generation: number): Promise<void> {
    return new Promise((resolve, reject) =>
      this.publishConnectedThen(messages, generation, (error) =>
        error === undefined ? resolve() : reject(toError(error)),
      ),
    );
  }

  /** The hot path: no promise at all while every target queue is already declared on this connection. */
  protected override publishConnectedThen(
    messages: readonly OutgoingMessage[],
    _generation: number,
    done: (error: unknown) => void,
  ): void {
    const deadline = Date.now() + this.options.confirmTimeoutMs;
    let unasserted: Set<string> | undefined;
    for (const m of messages) {
      if (m.target.kind === 'queue' && !this.asserted.has(m.target.name))
        (unasserted ??= new Set()).add(m.target.name);
    }
    if (unasserted === undefined) {
      this.publishToPool(messages, deadline, done);
      return;
    }
    // Copy before awaiting the declares: the caller may reuse its buffers once publish() returned.
    const batch = messages.map((m) => ({ ...m, body: Buffer.from(m.body) }));
    const queues = unasserted;
    void (async () => {
      try {
        for (const queue of queues) await this.assertQueueShared(queue);
      } catch (error) {
        done(error);
        return;
      }
      this.publishToPool(batch, deadline, done);
    })();
  }

  /**
   * Publishes on the confirm-channel pool; `done` once every message has its outcome, with the failure of the
   * lowest-indexed failed message (as Promise.allSettled over per-message promises would give), else undefined.
   */
  private publishToPool(
    batch: readonly OutgoingMessage[],
    deadline: number,
    done: (error: unknown) => void,
  ): void {
    const pool = this.pool;
    if (!pool) {
      done(this.unavailable());
      return;
    }
    if (batch.length === 0) {
      done(undefined);
      return;
    }
    const poolMessages = batch.map((m) => {
      const toQueue = m.target.kind === 'queue';
      return {
        exchange: toQueue ? '' : this.options.exchange,
        routingKey: m.target.name,
        body: m.body,
        options: toPublishOptions(m.properties, toQueue),
      };
    });
    let remaining = batch.length;
    let failedIndex = -1;
    let failure: Error | undefined;
    pool.publishEach(poolMessages, deadline, (i, outcome, error) => {
      const err = error ?? outcomeError(outcome!, batch[i]!);
      if (err !== undefined && (failedIndex < 0 || i < failedIndex)) {
        failedIndex = i;
        failure = err;
      }
      if (--remaining === 0) done(failure);
    });
  }

  protected async startConsumer(consumer: ManagedConsumer, generation: number): Promise<ActiveConsumer> {
    const model = this.consumeModel;
    if (!model) throw this.unavailable();
    const ch = await model.createChannel();
    let open = true;
    let cancelled = false;
    let unacked = 0;
    let lastError: unknown;
    const closeIfDone = (): void => {
      if (cancelled && unacked === 0 && open) ch.close().catch(noop);
    };
    ch.on('error', (error: Error) => {
      lastError = error;
    });
    ch.on('handler-error', (error: Error, event: string) => this.handlerError(error, event));
    ch.on('close', () => {
      open = false;
      if (!cancelled) {
        this.consumerLost(
          consumer,
          generation,
          channelError(lastError ?? new Error('consumer channel closed')),
        );
      }
    });
    try {
      await ch.prefetch(consumer.prefetch);
      let queue = consumer.source.name;
      if (consumer.source.kind === 'queue') {
        await ch.assertQueue(queue, QUORUM);
      } else {
        queue = (await ch.assertQueue('', { exclusive: true, autoDelete: true, durable: false })).queue;
        await ch.bindQueue(queue, this.options.exchange, consumer.source.name);
      }
      // What the settlers of this channel's deliveries share (one object per channel, no closures per message).
      const consumerChannel: ConsumerChannel<ConsumeMessage> = {
        ch,
        isOpen: () => open,
        settled: (first) => {
          if (first) unacked--;
          closeIfDone();
        },
      };
      const onMessage = (msg: ConsumeMessage | null): void => {
        if (msg === null) {
          // basic.cancel from the server (e.g. the queue was deleted): start over on a fresh channel.
          if (cancelled) return;
          cancelled = true;
          ch.close().catch(noop);
          this.consumerLost(
            consumer,
            generation,
            new TransportError(
              ErrorCode.TRANSPORT_CHANNEL_CLOSED,
              `consumer of '${queue}' cancelled by the broker`,
            ),
          );
          return;
        }
        unacked++;
        const { properties, deliveryCount } = fromAmqpProperties(msg.properties);
        this.dispatch(
          consumer,
          new TransportDelivery(
            consumer.source.name,
            msg.content,
            properties,
            this.deliveryCountOf(consumer, properties.messageId, deliveryCount, msg.fields.redelivered),
            msg.fields.redelivered,
            new AmqpSettler(consumerChannel, msg),
          ),
        );
      };
      const { consumerTag } = await ch.consume(queue, onMessage, {
        noAck: false,
        ...(consumer.priority !== 0 ? { priority: consumer.priority } : {}),
      });
      return {
        cancel: async () => {
          if (cancelled) return;
          cancelled = true;
          // Unacked deliveries may still be settled; the channel closes once they are (or with the connection).
          if (open) await ch.cancel(consumerTag).catch(noop);
          closeIfDone();
        },
      };
    } catch (error) {
      cancelled = true;
      if (open) await ch.close().catch(noop);
      throw channelError(error);
    }
  }

  private async openConnection(role: 'consume' | 'publish', generation: number): Promise<ChannelModel> {
    let model: ChannelModel;
    try {
      model = await amqp.connect(this.amqpOptions.url, {
        clientProperties: { connection_name: `${this.name}-${role}` },
        noDelay: true,
        timeout: this.amqpOptions.connectTimeoutMs,
      });
    } catch (error) {
      throw new TransportError(ErrorCode.TRANSPORT_UNAVAILABLE, `cannot connect to the broker (${role})`, {
        cause: error,
      });
    }
    if (this.amqpOptions.coalesceWrites) {
      const socket = amqpSocketOf(model);
      if (socket) coalesceWrites(socket);
    }
    if (this.amqpOptions.directPublish && !encodePublishesDirectly(model)) {
      // Still correct (amqplib encodes), only slower: amqplib's internals are not where this version expects them.
      this.log.warn(
        { role },
        "directPublish: amqplib's connection internals not found; amqplib encodes publishes",
      );
    }
    // 'error' precedes 'close' on a connection failure; without a listener it would crash the process.
    model.on('error', (error: Error) => this.log.warn({ err: error, role }, 'broker connection error'));
    model.on('handler-error', (error: Error, event: string) => this.handlerError(error, event));
    model.on('close', (error?: Error) => this.connectionLost(generation, error));
    return model;
  }

  private async addPublishChannel(
    model: ChannelModel,
    pool: PublishChannelPool,
    generation: number,
  ): Promise<void> {
    const ch = await model.createConfirmChannel();
    const publish = this.amqpOptions.directPublish ? directPublisher(ch) : undefined;
    const handle = pool.add(publish ? { publish, once: (event, listener) => ch.once(event, listener) } : ch);
    ch.on('error', (error: Error) => this.log.warn({ err: error }, 'publish channel error'));
    ch.on('handler-error', (error: Error, event: string) => this.handlerError(error, event));
    ch.on('return', (msg: amqp.Message) =>
      handle.returned(String(msg.properties.messageId ?? ''), msg.fields.routingKey),
    );
    ch.on('close', () => {
      handle.closed();
      // Replace it if the connection stays up (a connection loss is reported right after and wins).
      setImmediate(() => {
        if (!this.isCurrent(generation) || this.state !== 'connected' || this.pool !== pool) return;
        this.addPublishChannel(model, pool, generation).catch((error: unknown) =>
          this.emitError(channelError(error)),
        );
      });
    });
  }

  private async closeModel(model: ChannelModel): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const closed = await Promise.race([
      model.close().then(
        () => true,
        () => true, // already closed
      ),
      new Promise<boolean>(
        (resolve) => (timer = setTimeout(() => resolve(false), this.options.closeTimeoutMs)),
      ),
    ]);
    clearTimeout(timer);
    if (!closed) {
      // The broker does not answer connection.close: drop the socket (amqplib has no public API for it).
      (
        model as unknown as { connection?: { stream?: { destroy?: () => void } } }
      ).connection?.stream?.destroy?.();
    }
  }

  private handlerError(error: Error, event: string): void {
    this.emitError(
      new TransportError(ErrorCode.TRANSPORT_CHANNEL_CLOSED, `listener of '${event}' threw`, {
        cause: error,
      }),
    );
  }

  private unavailable(): TransportError {
    return new TransportError(ErrorCode.TRANSPORT_UNAVAILABLE, `transport '${this.name}' is not connected`);
  }
}

function outcomeError(outcome: ConfirmOutcome, m: OutgoingMessage): TransportError | undefined {
  if (outcome === 'nack') {
    return new TransportError(ErrorCode.TRANSPORT_NACKED, `broker nacked publish to '${m.target.name}'`);
  }
  if (outcome === 'returned') {
    return new TransportError(
      ErrorCode.TRANSPORT_UNROUTABLE,
      `no queue '${m.target.name}' (mandatory publish returned)`,
    );
  }
  return undefined;
}

/** Maps an amqplib channel/operation error to a TransportError by its AMQP reply code. */
function channelError(error: unknown): TransportError {
  if (error instanceof TransportError) return error;
  const code = (error as { code?: unknown } | undefined)?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (code === 406 && !/delivery tag/i.test(message)) {
    return new TransportError(ErrorCode.TRANSPORT_PRECONDITION_FAILED, message, { cause: error });
  }
  if (typeof code === 'number' || /channel (closed|ended)/i.test(message)) {
    return new TransportError(ErrorCode.TRANSPORT_CHANNEL_CLOSED, message, { cause: error });
  }
  return new TransportError(ErrorCode.TRANSPORT_UNAVAILABLE, message, { cause: error });
}

/** Runs `op` on a fresh channel and closes it: a channel error (404, 406) then only closes that channel. */
async function withThrowawayChannel<T>(model: ChannelModel, op: (ch: Channel) => Promise<T>): Promise<T> {
  let ch: Channel;
  try {
    ch = await model.createChannel();
  } catch (error) {
    throw new TransportError(ErrorCode.TRANSPORT_UNAVAILABLE, 'cannot open a channel', { cause: error });
  }
  ch.on('error', noop); // the operation's rejection carries the same error
  try {
    return await op(ch);
  } catch (error) {
    throw channelError(error);
  } finally {
    await ch.close().catch(noop);
  }
}

/** A message taken out of a queue by {@link AmqpAdmin.drainQueue}. */
export interface AmqpDrainedMessage {
  body: Buffer;
  properties: MessageProperties;
  deliveryCount: number;
}

/**
 * Administrative operations on their own connection, each on a throw-away channel: queue depth, get-and-ack
 * (e.g. to inspect or reissue dead letters), declare and delete. Used by tests and operator tooling.
 */
export class AmqpAdmin {
  private readonly model: ChannelModel;

  private constructor(model: ChannelModel) {
    this.model = model;
  }

  /** Connects with the connection name `name`. */
  static async connect(url: string, name: string): Promise<AmqpAdmin> {
    const model = await amqp.connect(url, { clientProperties: { connection_name: name }, noDelay: true });
    model.on('error', noop); // 'close' follows; every operation then fails
    return new AmqpAdmin(model);
  }

  /** Ready messages in a queue; 0 if it does not exist. */
  async queueDepth(queue: string): Promise<number> {
    try {
      return (await withThrowawayChannel(this.model, (ch) => ch.checkQueue(queue))).messageCount;
    } catch (error) {
      if (isNotFound(error)) return 0;
      throw error;
    }
  }

  /** Gets and acks up to `max` messages. */
  async drainQueue(queue: string, max = Number.POSITIVE_INFINITY): Promise<AmqpDrainedMessage[]> {
    try {
      return await withThrowawayChannel(this.model, async (ch) => {
        const out: AmqpDrainedMessage[] = [];
        while (out.length < max) {
          const msg = await ch.get(queue, { noAck: false });
          if (msg === false) break;
          ch.ack(msg);
          const { properties, deliveryCount } = fromAmqpProperties(msg.properties);
          out.push({ body: msg.content, properties, deliveryCount });
        }
        return out;
      });
    } catch (error) {
      if (isNotFound(error)) return [];
      throw error;
    }
  }

  /** Declares a durable queue of the given type (`quorum` with the canonical argument, or a plain `classic`). */
  async declareQueue(queue: string, kind: 'quorum' | 'classic'): Promise<void> {
    await withThrowawayChannel(this.model, (ch) =>
      ch.assertQueue(queue, kind === 'quorum' ? QUORUM : { durable: true }),
    );
  }

  async deleteQueue(queue: string): Promise<void> {
    await withThrowawayChannel(this.model, (ch) => ch.deleteQueue(queue));
  }

  async deleteExchange(exchange: string): Promise<void> {
    await withThrowawayChannel(this.model, (ch) => ch.deleteExchange(exchange));
  }

  async close(): Promise<void> {
    await this.model.close().catch(noop);
  }
}

function isNotFound(error: unknown): boolean {
  const cause = error instanceof TransportError ? error.cause : error;
  return (cause as { code?: unknown } | undefined)?.code === 404;
}
