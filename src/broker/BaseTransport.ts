import { EventEmitter } from 'node:events';
import { ConfigError, ErrorCode, TransportError } from '../errors.ts';
import type { Logger } from '../logging.ts';
import { backoffDelay } from '../util/backoff.ts';
import { checkHeaders } from './headerTable.ts';
import { OutstandingPublishes } from './OutstandingPublishes.ts';
import { RedeliveryCounter } from './RedeliveryCounter.ts';
import { ManagedConsumer, type ActiveConsumer, type ConsumerSource } from './ManagedConsumer.ts';
import {
  consumerPriority,
  type ConsumeOptions,
  type Consumer,
  type DeliveryHandler,
  type OutgoingMessage,
  type Transport,
  type TransportEventMap,
  type TransportState,
} from './Transport.ts';
import type { TransportDelivery } from './TransportDelivery.ts';
import type { ResolvedTransportOptions } from './TransportOptions.ts';

const noop = (): void => {};

/**
 * The connection life cycle both transports share, so they behave the same: connect, loss detection, reconnect
 * with exponential backoff and jitter, consumers re-established after every reconnect (and after the broker
 * closed one's channel), fail-fast publishes while disconnected, the confirm timeout, and an idempotent close.
 *
 * Every (re)connect starts a new *generation*. Work begun in an older generation (a consumer start, a channel
 * close, an ack) is recognised as stale by its generation number and dropped.
 * @internal
 */
export abstract class BaseTransport extends EventEmitter<TransportEventMap> implements Transport {
  readonly name: string;
  protected readonly options: ResolvedTransportOptions;
  protected readonly log: Logger;
  private readonly redeliveries = new RedeliveryCounter();
  /** The current connection generation. */
  protected generation = 0;
  private currentState: TransportState = 'idle';
  private connecting: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private reconnectAttempt = 0;
  /** A connection of this generation closed while it was still being opened. */
  private lostGeneration = -1;
  private readonly consumers = new Set<ManagedConsumer>();
  /** Publishes awaiting their confirms, failed when past the confirm timeout. */
  private readonly outstanding: OutstandingPublishes;
  /**
   * Queues declared on the current publish connection (reset by the subclass on every connect). A queue leaves the
   * set when a publish to it is returned: it was deleted behind our back, and the next publish declares it again.
   */
  protected asserted = new Set<string>();
  /** Queue declares in progress, by queue, with the generation they run on. */
  private readonly declaring = new Map<string, { generation: number; done: Promise<void> }>();

  protected constructor(options: ResolvedTransportOptions) {
    super();
    this.options = options;
    this.name = options.name;
    this.log = options.logger.child({ transport: options.name });
    this.outstanding = new OutstandingPublishes(options.confirmTimeoutMs);
  }

  /** Opens the connections of generation `generation` and declares the pub/sub exchange. */
  protected abstract openConnections(generation: number): Promise<void>;
  /** Closes whatever connections are open. Idempotent; never rejects. */
  protected abstract closeConnections(): Promise<void>;
  /** Starts consuming for `consumer` on the current connections; delivers through {@link dispatch}. */
  protected abstract startConsumer(consumer: ManagedConsumer, generation: number): Promise<ActiveConsumer>;
  /** Publishes and resolves when every message is confirmed (the base class applies the confirm timeout). */
  protected abstract publishConnected(
    messages: readonly OutgoingMessage[],
    generation: number,
  ): Promise<void>;
  protected abstract assertQueueConnected(queue: string): Promise<void>;

  /**
   * {@link assertQueueConnected}, shared by every publish that needs the same queue declared on the current
   * connection: without it, the first burst of N concurrent publishes to a new queue (e.g. a stage's concurrency
   * worth of replies after a restart) opens N throw-away channels and sends N identical declares.
   */
  protected assertQueueShared(queue: string): Promise<void> {
    const running = this.declaring.get(queue);
    if (running && running.generation === this.generation) return running.done;
    const entry = {
      generation: this.generation,
      done: this.assertQueueConnected(queue).finally(() => {
        if (this.declaring.get(queue) === entry) this.declaring.delete(queue);
      }),
    };
    this.declaring.set(queue, entry);
    return entry.done;
  }

  /**
   * {@link publishConnected} reporting through a callback (`error` undefined = all confirmed), called exactly
   * once. A subclass may override it to avoid the promise per publish on its hot path.
   */
  protected publishConnectedThen(
    messages: readonly OutgoingMessage[],
    generation: number,
    done: (error: unknown) => void,
  ): void {
    this.publishConnected(messages, generation).then(() => done(undefined), done);
  }

  get state(): TransportState {
    return this.currentState;
  }

  connect(): Promise<void> {
    if (this.currentState === 'closed') return Promise.reject(this.closedError());
    if (this.currentState === 'connected' || this.currentState === 'reconnecting') return Promise.resolve();
    this.connecting ??= this.initialConnect();
    return this.connecting;
  }

  async assertQueue(queue: string): Promise<void> {
    this.checkConnected();
    await this.assertQueueConnected(queue);
  }

  publish(messages: readonly OutgoingMessage[]): Promise<void> {
    try {
      this.checkConnected();
      for (const m of messages) checkHeaders(m.properties.headers, this.options.maxHeaderBytes);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    if (messages.length === 0) return Promise.resolve();
    return this.outstanding.track((done) =>
      this.publishConnectedThen(messages, this.generation, (error) => {
        if ((error as { code?: unknown } | undefined)?.code === ErrorCode.TRANSPORT_UNROUTABLE) {
          // Which message was returned is not reported here; forgetting every queue of the batch costs at most a
          // few redundant declares.
          for (const m of messages) if (m.target.kind === 'queue') this.asserted.delete(m.target.name);
        }
        done(error);
      }),
    );
  }

  consume(queue: string, options: ConsumeOptions, handler: DeliveryHandler): Consumer {
    return this.addConsumer({ kind: 'queue', name: queue }, options.prefetch, handler, options.priority);
  }

  subscribe(topic: string, options: Partial<ConsumeOptions>, handler: DeliveryHandler): Consumer {
    return this.addConsumer({ kind: 'topic', name: topic }, options.prefetch ?? 1, handler, options.priority);
  }

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  // ---- for subclasses -----------------------------------------------------------------------------------------

  /** A connection of `generation` closed without our asking: reconnect (or fail the connect in progress). */
  protected connectionLost(generation: number, error: Error | undefined): void {
    if (generation !== this.generation) return;
    if (this.currentState === 'connecting' || this.currentState === 'reconnecting') {
      this.lostGeneration = generation;
      return;
    }
    if (this.currentState !== 'connected') return;
    this.log.warn({ err: error }, 'broker connection lost; reconnecting');
    this.currentState = 'reconnecting';
    this.generation++;
    for (const c of this.consumers) {
      c.active = undefined;
      if (c.retryTimer) clearTimeout(c.retryTimer);
      c.retryTimer = undefined;
    }
    this.emit('transport:disconnected', error ? { error } : {});
    void this.closeConnections().then(() => this.scheduleReconnect());
  }

  /**
   * The broker closed a consumer's channel (or cancelled it) while the connection stayed up: report it and start
   * the consumer again after a backoff. Deferred a turn, so a connection loss reported right after wins.
   */
  protected consumerLost(consumer: ManagedConsumer, generation: number, error: Error): void {
    setImmediate(() => {
      if (generation !== this.generation || consumer.isCancelled || this.currentState !== 'connected') return;
      consumer.active = undefined;
      this.emitError(error);
      this.retryConsumer(consumer);
    });
  }

  /**
   * The delivery count of a delivery from `consumer`'s source: the broker's, except on topic subscriptions, whose
   * classic queues carry none (RabbitMQ counts only on quorum queues), where redeliveries are counted here.
   */
  protected deliveryCountOf(
    consumer: ManagedConsumer,
    messageId: string,
    brokerCount: number,
    redelivered: boolean,
  ): number {
    if (consumer.source.kind !== 'topic') return brokerCount;
    return this.redeliveries.count(consumer.source.name, messageId, brokerCount, redelivered);
  }

  /** Hands a delivery to the consumer's handler; a throwing handler that settled nothing gets a requeue. */
  protected dispatch(consumer: ManagedConsumer, delivery: TransportDelivery): void {
    try {
      const result = consumer.handler(delivery);
      if (result && typeof result.then === 'function') {
        result.then(noop, (error: unknown) => this.handlerFailed(consumer, delivery, error));
      }
    } catch (error) {
      this.handlerFailed(consumer, delivery, error);
    }
  }

  private handlerFailed(consumer: ManagedConsumer, delivery: TransportDelivery, error: unknown): void {
    // The handler's own error, reported as is: it is the caller's bug, not a transport condition.
    this.emitError(
      error instanceof Error
        ? error
        : new Error(`handler of '${consumer.source.name}' failed: ${String(error)}`),
    );
    if (!delivery.settled) delivery.reject(true);
  }

  protected emitError(error: Error): void {
    this.log.warn({ err: error }, 'transport error');
    this.emit('transport:error', { error });
  }

  protected isCurrent(generation: number): boolean {
    return generation === this.generation && this.currentState !== 'closed';
  }

  // ---- internals ----------------------------------------------------------------------------------------------

  private async initialConnect(): Promise<void> {
    this.currentState = 'connecting';
    const generation = ++this.generation;
    try {
      await this.openConnections(generation);
      if (this.lostGeneration === generation) throw new Error('connection closed while connecting');
    } catch (error) {
      this.connecting = undefined;
      await this.closeConnections();
      if (this.stateNow() === 'closed') throw this.closedError();
      this.currentState = 'idle';
      throw new TransportError(
        ErrorCode.TRANSPORT_UNAVAILABLE,
        `transport '${this.name}' could not connect`,
        {
          cause: error,
        },
      );
    }
    if (this.stateNow() === 'closed') {
      await this.closeConnections();
      throw this.closedError();
    }
    this.currentState = 'connected';
    this.log.info({}, 'connected to broker');
    this.emit('transport:connected', { reconnect: false });
    this.startConsumers(false);
  }

  private scheduleReconnect(): void {
    if (this.stateNow() !== 'reconnecting') return;
    const delay = backoffDelay(this.reconnectAttempt++, this.options.reconnect);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.reconnect();
    }, delay);
  }

  private async reconnect(): Promise<void> {
    if (this.stateNow() !== 'reconnecting') return;
    const generation = ++this.generation;
    try {
      await this.openConnections(generation);
      if (this.lostGeneration === generation) throw new Error('connection closed while reconnecting');
    } catch (error) {
      await this.closeConnections();
      if (this.stateNow() !== 'reconnecting') return;
      this.log.warn({ err: error, attempt: this.reconnectAttempt }, 'reconnect failed');
      this.scheduleReconnect();
      return;
    }
    if (this.stateNow() !== 'reconnecting') {
      await this.closeConnections();
      return;
    }
    this.reconnectAttempt = 0;
    this.currentState = 'connected';
    this.log.info({}, 'reconnected to broker');
    this.emit('transport:connected', { reconnect: true });
    this.startConsumers(true);
  }

  /** (Re)starts every consumer, then emits `transport:consuming` if this connection is still the current one. */
  private startConsumers(reconnect: boolean): void {
    const generation = this.generation;
    void Promise.allSettled([...this.consumers].map((c) => this.runConsumer(c))).then(() => {
      if (this.currentState === 'connected' && generation === this.generation) {
        this.emit('transport:consuming', { reconnect });
      }
    });
  }

  private addConsumer(
    source: ConsumerSource,
    prefetch: number,
    handler: DeliveryHandler,
    priority: number | undefined,
  ): Consumer {
    if (!Number.isInteger(prefetch) || prefetch < 1) {
      throw new ConfigError('prefetch', `must be an integer >= 1, was ${prefetch}`);
    }
    const consumer = new ManagedConsumer(
      source,
      prefetch,
      handler,
      (c) => this.consumers.delete(c),
      consumerPriority(priority),
    );
    if (this.currentState === 'closed') {
      void consumer.cancel();
      return consumer;
    }
    this.consumers.add(consumer);
    if (this.currentState === 'connected') void this.runConsumer(consumer);
    return consumer;
  }

  private async runConsumer(consumer: ManagedConsumer): Promise<void> {
    const generation = this.generation;
    if (
      consumer.isCancelled ||
      this.currentState !== 'connected' ||
      consumer.startingGeneration === generation
    )
      return;
    if (consumer.active) return;
    consumer.startingGeneration = generation;
    try {
      const active = await this.startConsumer(consumer, generation);
      if (consumer.isCancelled || generation !== this.generation || this.currentState !== 'connected') {
        await active.cancel();
        return;
      }
      consumer.active = active;
      consumer.failures = 0;
      consumer.markReady();
    } catch (error) {
      if (consumer.isCancelled || generation !== this.generation || this.currentState !== 'connected') return;
      const err = error instanceof Error ? error : new Error(String(error));
      this.emitError(err);
      if (consumer.isReady) {
        this.retryConsumer(consumer);
      } else {
        // The first start failed (e.g. the queue exists with other arguments): the caller learns it from `ready`.
        consumer.markFailed(err);
        void consumer.cancel();
      }
    } finally {
      if (consumer.startingGeneration === generation) consumer.startingGeneration = -1;
    }
  }

  private retryConsumer(consumer: ManagedConsumer): void {
    if (consumer.retryTimer || consumer.isCancelled) return;
    const delay = backoffDelay(consumer.failures++, this.options.reconnect);
    consumer.retryTimer = setTimeout(() => {
      consumer.retryTimer = undefined;
      void this.runConsumer(consumer);
    }, delay);
  }

  private async doClose(): Promise<void> {
    const wasConnecting = this.connecting;
    this.currentState = 'closed';
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const pending = [...this.consumers].map((c) => c.cancel());
    pending.push(this.outstanding.settled());
    if (wasConnecting) pending.push(wasConnecting.catch(noop));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled(pending),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, this.options.closeTimeoutMs))),
    ]);
    clearTimeout(timer);
    await this.closeConnections();
    // Unconfirmed publishes normally failed with the connections; any left still time out through the sweep.
    this.outstanding.stopWaiting();
    this.log.info({}, 'transport closed');
  }

  /** The state, read afresh (not narrowed by an earlier check across an await). */
  private stateNow(): TransportState {
    return this.currentState;
  }

  private checkConnected(): void {
    if (this.currentState === 'closed') throw this.closedError();
    if (this.currentState !== 'connected') {
      throw new TransportError(
        ErrorCode.TRANSPORT_UNAVAILABLE,
        `transport '${this.name}' is ${this.currentState}`,
      );
    }
  }

  private closedError(): TransportError {
    return new TransportError(ErrorCode.TRANSPORT_CLOSED, `transport '${this.name}' is closed`);
  }
}
