import { availableParallelism } from 'node:os';
import type { Knex } from 'knex';
import { consumerPriority, type Transport } from '../broker/Transport.ts';
import { ConfigError } from '../errors.ts';
import { silentLogger, type Logger } from '../logging.ts';
import { noopMetrics, type Metrics } from '../metrics/Metrics.ts';

/** A source of the current time (epoch ms); tests may substitute one. */
export interface Clock {
  now(): number;
}

/** Rewrites the traceId of initiations made outside stages (e.g. to prepend an HTTP request id with `+`). */
export type TraceIdModifier = (traceId: string) => string;

/** Options of a {@link MatsFactory} (one per node). */
export interface MatsFactoryOptions {
  /** Application name: shown in messages, logs, metrics and DLQ headers; the default common group id. */
  appName: string;
  /** Application version. */
  appVersion: string;
  /** This node's name (host name, pod name, ...). Used in node-specific ids, so keep it stable per process. */
  nodeName: string;
  /** The broker connection of this node. The factory connects it on start, but does not close it (the caller owns it). */
  transport: Transport;
  /** Database for stage transactions (`ctx.sql()`), the inbox and the outbox. The caller owns it. @default none */
  db?: Knex;
  /** Prefix of every queue and topic: stage queue `${queuePrefix}S`, interactive `${queuePrefix}S:i`, DLQ `DLQ.${queuePrefix}S`. @default 'mats.' */
  queuePrefix?: string;
  /** Prefix for endpoint ids starting with `.`. @default appName */
  commonGroupId?: string;
  /** Concurrency (= prefetch) of each stage's standard consumer set. @default min(10, 2 × CPUs) */
  concurrency?: number;
  /** Concurrency (= prefetch) of each stage's interactive consumer set. @default concurrency */
  interactiveConcurrency?: number;
  /** Attempts before a failing message is dead-lettered (1 delivery + redeliveries). @default 6 */
  maxDeliveryAttempts?: number;
  /** Pause before a failed delivery is rejected for redelivery, in ms. @default 250 */
  retryDelayMs?: number;
  /**
   * How long a stage whose database is unreachable (down, restarting, connections cut) keeps the message and tries
   * again in process, in ms, before such a failure counts as a delivery attempt. Waits back off from
   * `retryDelayMs` to 2 s. Without it a database restart longer than the redelivery budget (`maxDeliveryAttempts`
   * × `retryDelayMs`) would dead-letter every message in flight. 0 turns it off. @default 60000
   */
  databaseOutageRetryMs?: number;
  /** Transactional outbox for stages and initiators (they may override). Needs `db`. @default false */
  outbox?: boolean;
  /** Inbox (de-duplication by matsMessageId) for stages (they may override). Needs `db`; implies the outbox. @default false */
  inbox?: boolean;
  /** Run the outbox sweeper on this node. @default true when `db` is given */
  outboxSweeper?: boolean;
  /** Interval between outbox sweeps, in ms. @default 1000 */
  outboxSweepIntervalMs?: number;
  /** Minimum age of an outbox row before the sweeper publishes it, in ms. @default 2000 */
  outboxSweepMinAgeMs?: number;
  /** Rows per sweep transaction. @default 100 */
  outboxSweepBatchSize?: number;
  /**
   * How long the deletes of published outbox rows gather before one statement deletes them, in ms; at most a
   * quarter of `outboxSweepMinAgeMs` is used, so the sweeper never finds a published row. @default 25
   */
  outboxDeleteWindowMs?: number;
  /**
   * How long the sweeper's lease on the outbox rows it is publishing lasts, in ms. Rows are leased in a short
   * committed transaction, then published with no transaction open; a row whose lease passed (its sweeper died or
   * is stuck) is taken again by any sweeper. Keep it well above the transport's `confirmTimeoutMs`. @default 30000
   */
  outboxLeaseMs?: number;
  /**
   * Failed publishes of one outbox row that were the row's own fault (returned, nacked, refused by the broker; an
   * outage does not count) before the sweeper dead-letters it to `DLQ.<its target queue>` with the reason in
   * `mats_dlq_Exception` (counted in `mats_outbox_dead_lettered_total`). @default 10
   */
  outboxMaxAttempts?: number;
  /**
   * How long inbox rows are kept for de-duplication, in ms. A duplicate of a processed message arrives when the
   * broker redelivers it (the ack was lost with a connection or a crash) or an outbox row is published again after
   * its lease: that is minutes, unless the duplicate then waits in a backlogged queue, so a day covers a night's
   * consumer outage. Every processed message adds a row (at 500 replies/s, 43 M rows a day), so this is the
   * table's size. @default 86400000 (1 day)
   */
  inboxRetentionMs?: number;
  /**
   * Interval between inbox purges, in ms; each node's first purge comes after a random part of it, so the nodes of
   * a cluster do not all purge at once. The purge deletes in batches. @default 600000 (10 min)
   */
  inboxPurgeIntervalMs?: number;
  /** Bodies larger than this are deflated, in bytes. @default 1024 */
  compressionThresholdBytes?: number;
  /** Maximum reply stack height of an outgoing message; more refuses the incoming message. @default 35 */
  maxStackHeight?: number;
  /** Maximum total call number of an outgoing message; more refuses the incoming message. @default 200 */
  maxTotalCallNumber?: number;
  /** Maximum outstanding futurized requests; more are rejected at once. @default 50000 */
  futurizerMaxOutstanding?: number;
  /** A stage running longer than this logs a warning (the broker's consumer_timeout is 30 min), in ms. @default 60000 */
  slowStageWarnMs?: number;
  /** Grace period of `stop()` when none is given, in ms. @default 5000 */
  stopGraceMs?: number;
  /** Rewrites traceIds of initiations outside stages. @default none */
  initiateTraceIdModifier?: TraceIdModifier;
  /** @default silentLogger */
  logger?: Logger;
  /** @default noopMetrics */
  metrics?: Metrics;
  /**
   * This node's wall clock (message timestamps, `mats_Expires`). Not used for what nodes compare with each other:
   * outbox ages and leases are taken from the database's clock, a hop's TTL is judged as a duration
   * (docs/mats-semantics.md §2.3, §2.1). @default Date.now
   */
  clock?: Clock;
}

/** {@link MatsFactoryOptions} with every default applied and validated. */
export interface ResolvedMatsFactoryOptions {
  appName: string;
  appVersion: string;
  nodeName: string;
  transport: Transport;
  db: Knex | undefined;
  queuePrefix: string;
  commonGroupId: string;
  concurrency: number;
  interactiveConcurrency: number;
  maxDeliveryAttempts: number;
  retryDelayMs: number;
  databaseOutageRetryMs: number;
  outbox: boolean;
  inbox: boolean;
  outboxSweeper: boolean;
  outboxSweepIntervalMs: number;
  outboxSweepMinAgeMs: number;
  outboxSweepBatchSize: number;
  outboxDeleteWindowMs: number;
  outboxLeaseMs: number;
  outboxMaxAttempts: number;
  inboxRetentionMs: number;
  inboxPurgeIntervalMs: number;
  compressionThresholdBytes: number;
  maxStackHeight: number;
  maxTotalCallNumber: number;
  futurizerMaxOutstanding: number;
  slowStageWarnMs: number;
  stopGraceMs: number;
  initiateTraceIdModifier: TraceIdModifier | undefined;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
}

const DAY_MS = 24 * 3600 * 1000;

/** Applies defaults and validates; throws {@link ConfigError} naming the offending field. */
export function resolveMatsFactoryOptions(options: MatsFactoryOptions): ResolvedMatsFactoryOptions {
  if (!options || typeof options !== 'object') throw new ConfigError('options', 'must be an object');
  const appName = requireNonEmpty(options.appName, 'appName');
  const appVersion = requireString(options.appVersion, 'appVersion');
  const nodeName = requireNonEmpty(options.nodeName, 'nodeName');
  const t = options.transport as Partial<Transport> | undefined;
  if (!t || typeof t.publish !== 'function' || typeof t.consume !== 'function') {
    throw new ConfigError('transport', 'must be a Transport');
  }
  const db = options.db;
  if (db !== undefined && typeof db !== 'function') throw new ConfigError('db', 'must be a knex instance');
  const queuePrefix = options.queuePrefix ?? 'mats.';
  if (typeof queuePrefix !== 'string' || /[:\s]/.test(queuePrefix)) {
    throw new ConfigError('queuePrefix', 'must be a string without ":" or whitespace');
  }
  const commonGroupId = options.commonGroupId ?? appName;
  if (!/^[A-Za-z0-9._-]{1,100}$/.test(commonGroupId)) {
    throw new ConfigError('commonGroupId', `must match [A-Za-z0-9._-]{1,100}, was '${commonGroupId}'`);
  }
  const concurrency = positiveInt(
    options.concurrency,
    Math.min(10, 2 * availableParallelism()),
    'concurrency',
  );
  const inbox = options.inbox ?? false;
  const outbox = options.outbox ?? inbox;
  if (inbox && !outbox)
    throw new ConfigError('outbox', 'the inbox needs the outbox (inbox: true, outbox: false)');
  if ((outbox || inbox) && !db) throw new ConfigError(inbox ? 'inbox' : 'outbox', 'needs a db');
  const outboxSweeper = options.outboxSweeper ?? db !== undefined;
  if (outboxSweeper && !db) throw new ConfigError('outboxSweeper', 'needs a db');
  if (
    options.initiateTraceIdModifier !== undefined &&
    typeof options.initiateTraceIdModifier !== 'function'
  ) {
    throw new ConfigError('initiateTraceIdModifier', 'must be a function');
  }
  const clock = options.clock ?? { now: () => Date.now() };
  if (typeof clock.now !== 'function') throw new ConfigError('clock', 'must have now()');
  return {
    appName,
    appVersion,
    nodeName,
    transport: options.transport,
    db,
    queuePrefix,
    commonGroupId,
    concurrency,
    interactiveConcurrency: positiveInt(
      options.interactiveConcurrency,
      concurrency,
      'interactiveConcurrency',
    ),
    maxDeliveryAttempts: positiveInt(options.maxDeliveryAttempts, 6, 'maxDeliveryAttempts'),
    retryDelayMs: nonNegative(options.retryDelayMs, 250, 'retryDelayMs'),
    databaseOutageRetryMs: nonNegative(options.databaseOutageRetryMs, 60_000, 'databaseOutageRetryMs'),
    outbox,
    inbox,
    outboxSweeper,
    outboxSweepIntervalMs: positiveInt(options.outboxSweepIntervalMs, 1000, 'outboxSweepIntervalMs'),
    outboxSweepMinAgeMs: nonNegative(options.outboxSweepMinAgeMs, 2000, 'outboxSweepMinAgeMs'),
    outboxSweepBatchSize: positiveInt(options.outboxSweepBatchSize, 100, 'outboxSweepBatchSize'),
    outboxDeleteWindowMs: nonNegative(options.outboxDeleteWindowMs, 25, 'outboxDeleteWindowMs'),
    outboxLeaseMs: positiveInt(options.outboxLeaseMs, 30_000, 'outboxLeaseMs'),
    outboxMaxAttempts: positiveInt(options.outboxMaxAttempts, 10, 'outboxMaxAttempts'),
    inboxRetentionMs: positiveInt(options.inboxRetentionMs, DAY_MS, 'inboxRetentionMs'),
    inboxPurgeIntervalMs: positiveInt(options.inboxPurgeIntervalMs, 600_000, 'inboxPurgeIntervalMs'),
    compressionThresholdBytes: nonNegative(
      options.compressionThresholdBytes,
      1024,
      'compressionThresholdBytes',
    ),
    maxStackHeight: positiveInt(options.maxStackHeight, 35, 'maxStackHeight'),
    maxTotalCallNumber: positiveInt(options.maxTotalCallNumber, 200, 'maxTotalCallNumber'),
    futurizerMaxOutstanding: positiveInt(options.futurizerMaxOutstanding, 50_000, 'futurizerMaxOutstanding'),
    slowStageWarnMs: positiveInt(options.slowStageWarnMs, 60_000, 'slowStageWarnMs'),
    stopGraceMs: nonNegative(options.stopGraceMs, 5000, 'stopGraceMs'),
    initiateTraceIdModifier: options.initiateTraceIdModifier,
    logger: options.logger ?? silentLogger,
    metrics: options.metrics ?? noopMetrics,
    clock,
  };
}

/** Per-endpoint / per-stage overrides; unset fields inherit stage → endpoint → factory. */
export interface StageOptions {
  /** Concurrency (= prefetch) of the standard consumer set. @default the endpoint's, else the factory's */
  concurrency?: number;
  /** Concurrency (= prefetch) of the interactive consumer set. @default the endpoint's, else the factory's */
  interactiveConcurrency?: number;
  /** De-duplicate incoming messages by matsMessageId (`mats_inbox`). Implies the outbox. @default factory's */
  inbox?: boolean;
  /** Write outgoing messages to `mats_outbox` in the stage transaction. @default factory's */
  outbox?: boolean;
  /** @default factory's */
  maxDeliveryAttempts?: number;
  /** @default factory's */
  retryDelayMs?: number;
  /**
   * Consumer priority of the stage's consumers (the transport's `ConsumeOptions.priority`): nodes consuming the same
   * queue at a higher priority get its messages while they have room. @default 0
   */
  priority?: number;
}

/** {@link StageOptions} resolved against the endpoint's and the factory's. */
export interface ResolvedStageOptions {
  concurrency: number;
  interactiveConcurrency: number;
  inbox: boolean;
  outbox: boolean;
  maxDeliveryAttempts: number;
  retryDelayMs: number;
  priority: number;
}

/** Resolves stage options: stage → endpoint → factory. Throws {@link ConfigError} naming the field. */
export function resolveStageOptions(
  factory: ResolvedMatsFactoryOptions,
  endpoint: StageOptions | undefined,
  stage: StageOptions | undefined,
): ResolvedStageOptions {
  const pick = <K extends keyof StageOptions>(key: K): StageOptions[K] | undefined =>
    stage?.[key] ?? endpoint?.[key];
  const concurrency = positiveInt(pick('concurrency'), factory.concurrency, 'concurrency');
  const inbox = pick('inbox') ?? factory.inbox;
  const outbox = pick('outbox') ?? (inbox || factory.outbox);
  if (inbox && !outbox)
    throw new ConfigError('outbox', 'the inbox needs the outbox (inbox: true, outbox: false)');
  if ((inbox || outbox) && !factory.db)
    throw new ConfigError(inbox ? 'inbox' : 'outbox', 'needs the factory db');
  return {
    concurrency,
    interactiveConcurrency: positiveInt(
      pick('interactiveConcurrency'),
      pick('concurrency') ?? factory.interactiveConcurrency,
      'interactiveConcurrency',
    ),
    inbox,
    outbox,
    maxDeliveryAttempts: positiveInt(
      pick('maxDeliveryAttempts'),
      factory.maxDeliveryAttempts,
      'maxDeliveryAttempts',
    ),
    retryDelayMs: nonNegative(pick('retryDelayMs'), factory.retryDelayMs, 'retryDelayMs'),
    priority: consumerPriority(pick('priority')),
  };
}

function requireString(value: unknown, field: string): string {
  if (typeof value !== 'string') throw new ConfigError(field, 'must be a string');
  return value;
}

function requireNonEmpty(value: unknown, field: string): string {
  const s = requireString(value, field);
  if (s.length === 0) throw new ConfigError(field, 'must not be empty');
  return s;
}

function positiveInt(value: number | undefined, fallback: number, field: string): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < 1)
    throw new ConfigError(field, `must be an integer >= 1, was ${String(v)}`);
  return v;
}

function nonNegative(value: number | undefined, fallback: number, field: string): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw new ConfigError(field, `must be a number >= 0, was ${String(v)}`);
  }
  return v;
}
