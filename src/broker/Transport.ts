import type { EventEmitter } from 'node:events';
import { ConfigError } from '../errors.ts';

/**
 * The messaging transport behind the Mats layer (the nats.js `Transport` idea): one interface, two
 * implementations with the same observable semantics — {@link AmqpTransport} on RabbitMQ and the embedded
 * `InMemoryTransport` (the single-process default). A Transport is one node's connection(s) to the broker.
 *
 * Semantics every implementation guarantees (and `test/integration/broker/transportContract.test.ts` checks):
 * - Queues are durable quorum queues (declare argument only `x-queue-type: quorum`).
 * - `publish` resolves only after the broker confirmed **every** message. Queue targets are published
 *   `mandatory`; a return (no such queue) rejects with `TRANSPORT_UNROUTABLE`. Before the first publish to a
 *   queue in a connection generation the transport asserts the queue, so nothing is published into the void.
 * - Topic targets go to the pub/sub exchange with the topic as routing key; with no subscriber they are dropped.
 * - Deliveries are manually acked. `deliveryCount` is 0 on the first delivery and grows on every requeue
 *   (reject with requeue, or the channel/connection closing with the message unacked): it survives consumer
 *   crashes. `ack`/`reject` on a delivery whose channel has since closed are dropped silently.
 * - Consumers and subscriptions are re-established after a reconnect (topology declared again).
 */
export interface Transport extends EventEmitter<TransportEventMap> {
  /** Connection name (shown in the broker's connection list), e.g. the node name. */
  readonly name: string;
  /** Current connection state. */
  readonly state: TransportState;

  /** Connects (idempotent). Rejects with `TRANSPORT_UNAVAILABLE` if the first connection cannot be made. */
  connect(): Promise<void>;

  /** Declares a durable quorum queue (idempotent). */
  assertQueue(queue: string): Promise<void>;

  /**
   * Publishes the messages and resolves when all are confirmed. Rejects with a `TransportError`:
   * `TRANSPORT_UNROUTABLE` (mandatory return), `TRANSPORT_NACKED`, `TRANSPORT_CONFIRM_TIMEOUT` (no confirm within
   * `confirmTimeoutMs`, e.g. a blocked connection), `TRANSPORT_UNAVAILABLE` (disconnected; never buffered without
   * bound), `TRANSPORT_CLOSED`. On rejection, any subset may have been delivered: callers re-send with the same
   * message ids and receivers de-duplicate.
   */
  publish(messages: readonly OutgoingMessage[]): Promise<void>;

  /**
   * Consumes from a durable queue with manual acks and `prefetch` unacked deliveries at most.
   * The handler's promise is not awaited by the transport: the handler acks or rejects.
   */
  consume(queue: string, options: ConsumeOptions, handler: DeliveryHandler): Consumer;

  /**
   * Subscribes to a topic: a server-named exclusive queue bound to the pub/sub exchange with routing key `topic`,
   * prefetch 1 unless given. Publications made while this node is disconnected are lost (topic semantics).
   */
  subscribe(topic: string, options: Partial<ConsumeOptions>, handler: DeliveryHandler): Consumer;

  /** Closes the connection(s): stops consuming, waits for outstanding confirms up to a bound, then closes. Idempotent. */
  close(): Promise<void>;
}

export type TransportState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closed';

export interface TransportEventMap {
  /** (Re)connected; topology has been declared again. `reconnect` is true after a connection loss. */
  'transport:connected': [{ reconnect: boolean }];
  /**
   * After `transport:connected`: every consumer's (re)start has been tried (its queue declared and bound, its
   * consume issued), so messages published from now on reach the consumers that started. What a node missed while
   * disconnected is best read from here on, not at `transport:connected`, where a message published between that
   * read and its consumer's start would be missed again.
   */
  'transport:consuming': [{ reconnect: boolean }];
  /** The connection was lost; reconnection with backoff follows. */
  'transport:disconnected': [{ error?: Error }];
  /** The broker blocked publishing (memory or disk alarm). */
  'transport:blocked': [{ reason: string }];
  'transport:unblocked': [];
  /** A contained error (channel error, failed re-declare); the transport keeps going. */
  'transport:error': [{ error: Error }];
}

export interface PublishTarget {
  /** `queue`: a durable queue, published mandatory. `topic`: a routing key on the pub/sub exchange. */
  kind: 'queue' | 'topic';
  name: string;
}

/** Header values are strings, numbers or booleans only (the AMQP field table types we use). */
export type HeaderValue = string | number | boolean;

export interface MessageProperties {
  /** Unique id of the message (the matsMessageId). */
  messageId: string;
  /** Persistent (delivery mode 2) unless false. */
  persistent: boolean;
  contentType?: string;
  /** `deflate` when the body is compressed. */
  contentEncoding?: string;
  /** Per-message TTL in ms. */
  expiration?: number;
  /** Send time, epoch ms (carried in whole seconds, as AMQP does: received values are multiples of 1000). */
  timestamp?: number;
  appId?: string;
  /** Free-form type (the Mats call type). */
  type?: string;
  headers: Record<string, HeaderValue>;
}

export interface OutgoingMessage {
  target: PublishTarget;
  body: Buffer;
  properties: MessageProperties;
}

/**
 * Consumer priorities go from −this to this. RabbitMQ takes any signed 32-bit integer; a small range is what anyone
 * needs, and what the in-memory broker is checked against.
 */
export const MAX_CONSUMER_PRIORITY = 255;

/** `value` (default 0) as a consumer priority; a {@link ConfigError} naming `priority` when out of range. */
export function consumerPriority(value: number | undefined): number {
  const v = value ?? 0;
  if (!Number.isInteger(v) || Math.abs(v) > MAX_CONSUMER_PRIORITY) {
    throw new ConfigError(
      'priority',
      `must be an integer from -${MAX_CONSUMER_PRIORITY} to ${MAX_CONSUMER_PRIORITY}, was ${String(v)}`,
    );
  }
  return v;
}

export interface ConsumeOptions {
  /** Maximum unacked deliveries to this consumer. */
  prefetch: number;
  /**
   * Consumer priority (RabbitMQ's `x-priority`): a queue delivers to its highest-priority consumers that have room
   * under their prefetch, round robin among equals; lower ones get messages only while those are full or gone.
   * An integer within ±{@link MAX_CONSUMER_PRIORITY}. @default 0
   */
  priority?: number;
}

export interface Delivery {
  /** The queue it was consumed from (for a subscription: the topic). */
  readonly queue: string;
  readonly body: Buffer;
  readonly properties: MessageProperties;
  /** 0 on the first delivery; +1 per requeue (reject with requeue, or channel closed with it unacked). */
  readonly deliveryCount: number;
  readonly redelivered: boolean;
  /** Acknowledges. Dropped silently if the channel it came on has closed (the broker already requeued it). */
  ack(): void;
  /**
   * Rejects; with `requeue` it goes back to the queue with `deliveryCount` + 1 — behind the messages already ready
   * (RabbitMQ 3.10 quorum queues, measured), whereas a message whose channel closed keeps its place at the head.
   * Without `requeue` it is dropped (dead-lettered by a broker backstop). Same channel rule as `ack`.
   */
  reject(requeue: boolean): void;
}

export type DeliveryHandler = (delivery: Delivery) => void | Promise<void>;

export interface Consumer {
  /** Resolves when the consumer is registered and receiving (queue declared and bound). */
  readonly ready: Promise<void>;
  /** Stops consuming; unacked deliveries may still be acked or rejected until the channel closes. Idempotent. */
  cancel(): Promise<void>;
}
