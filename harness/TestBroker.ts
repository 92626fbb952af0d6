import type { AmqpTransportOptions } from '../src/broker/AmqpTransportOptions.ts';
import type { BackstopOptions } from '../src/broker/InMemoryBroker.ts';
import type { MessageProperties, Transport } from '../src/broker/Transport.ts';

export type TransportKind = 'inmemory' | 'rabbitmq';

export const transportLabel: Record<TransportKind, string> = { inmemory: 'in-memory', rabbitmq: 'RabbitMQ' };

/** Options a test may override on a transport (the name is always the suite's prefix + the given name). */
/** AMQP transport options of a test transport; `url` (e.g. a proxy in front of the broker) defaults to the service's. */
export type TestTransportOptions = Partial<Omit<AmqpTransportOptions, 'name'>>;

export interface DrainedTestMessage {
  body: Buffer;
  properties: MessageProperties;
  deliveryCount: number;
}

export interface TestBroker {
  kind: TransportKind;
  /** Unique per suite, e.g. `test.<runId>.<n>.`; the Mats layer uses it as its queue prefix. */
  prefix: string;
  /**
   * A new transport (one node's connections) on this broker, named `${prefix}${name}`, with the pub/sub exchange
   * `${prefix}pubsub` and fast test timings (confirm timeout 2 s, reconnect backoff from 50 ms up to 500 ms, close
   * timeout 1 s). Not connected yet. Closed by `close()`.
   */
  createTransport(name: string, options?: TestTransportOptions): Transport;
  /**
   * Forcibly drops every connection of this suite's transports from the broker side, as a crash would; with
   * `transportName`, only that transport's (the name given to {@link createTransport}).
   */
  dropConnections(transportName?: string): Promise<void>;
  /** Number of messages ready in a queue (0 if it does not exist). */
  queueDepth(queue: string): Promise<number>;
  /** Gets and acks up to `max` messages of a queue (for DLQ content assertions). */
  drainQueue(queue: string, max?: number): Promise<DrainedTestMessage[]>;
  /** Deletes a queue behind the transports' backs (to provoke an unroutable publish). */
  deleteQueue(queue: string): Promise<void>;
  /** Declares a classic (non-quorum) durable queue, so a transport's quorum declare of it fails with a 406. */
  declareClassicQueue(queue: string): Promise<void>;
  /** Sets the broker backstop (delivery limit + dead-letter queue) on one queue; the DLQ must be declared. */
  setBackstop(queue: string, backstop: BackstopOptions): Promise<void>;
  /**
   * Whether {@link blockPublishing} is available: on the in-memory broker and on a private RabbitMQ node, never on
   * the shared RabbitMQ (a memory alarm there would block every other test and worker on the machine).
   */
  readonly canBlock: boolean;
  /**
   * Raises the broker's memory alarm until {@link unblockPublishing}; resolves once it is in effect: every connection
   * that publishes from then on is blocked (`connection.blocked`), its publishes stay unconfirmed.
   */
  blockPublishing(): Promise<void>;
  unblockPublishing(): Promise<void>;
  /** Closes every transport it created and deletes the queues/exchange this suite created (RabbitMQ). */
  close(): Promise<void>;
}

/** Fast timings for tests; each overridable per transport. */
export const testTransportTimings = {
  confirmTimeoutMs: 2000,
  reconnect: { initialMs: 50, factor: 2, maxMs: 500, jitter: 0.2 },
  closeTimeoutMs: 1000,
} as const satisfies TestTransportOptions;
