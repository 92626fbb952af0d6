import { ConfigError } from '../errors.ts';
import { silentLogger, type Logger } from '../logging.ts';
import type { Dialect } from './database.ts';

/** Options of the SQL {@link ClusterStoreAndForward} (`docs/store.md` 9). Only `nodeName` is required. */
export interface StoreOptions {
  /**
   * This node's name, unique among running nodes: sessions are registered under it, and `boot()` deregisters every
   * row carrying it. 1–255 characters, no leading/trailing whitespace.
   */
  nodeName: string;
  /** Socket writes of an outbox row before the forwarder dead-letters it (read by the server). @default 10 */
  maxDeliveryAttempts?: number;
  /** Maximum ids per SQL IN-list; longer lists are split. @default 500 */
  inClauseChunk?: number;
  /** Run the migrations in `boot()`; otherwise `boot()` only verifies the schema. @default true for SQLite, else false */
  migrate?: boolean;
  /** The MatsSocket store's knex migration table. @default 'knex_migrations_matssocket' */
  migrationsTableName?: string;
  /** The Mats messaging layer's knex migration table (migrated/verified by `boot()` too). @default 'knex_migrations_mats' */
  matsMigrationsTableName?: string;
  /** Attempts of a transaction that fails with a deadlock, lock timeout or busy, including the first. @default 3 */
  transactionAttempts?: number;
  /** Log rows kept per topic; older ones are trimmed on append (BR-1). @default 1000 */
  topicReplayMaxPerTopic?: number;
  /** A topic row unused this long, with an empty log, is deleted by `purgeTopicLog`, in ms. @default 604800000 (7 days) */
  topicIdleRetentionMs?: number;
  /** The remnant scavenger's interval; its first run looks back twice this, in ms. @default 5400000 (90 min) */
  scavengeIntervalMs?: number;
  /** Overlap of consecutive scavenger windows, in ms. @default 600000 (10 min) */
  scavengeOverlapMs?: number;
  /** The scavenger only examines rows at least this old, in ms. @default 600000 (10 min) */
  scavengeMinAgeMs?: number;
  /** Bound on `boot()`'s connectivity check, and the connect timeout of a store-created knex, in ms. @default 10000 */
  connectTimeoutMs?: number;
  /**
   * Bound on waiting for the per-user lock that makes the session cap atomic on MySQL/MariaDB (`GET_LOCK`, whole
   * seconds; rounded up), in ms. @default 10000
   */
  userLockTimeoutMs?: number;
  /**
   * How often a booted store refreshes its node's liveliness row (`mats_socket_node`), in ms. @default 5000
   */
  nodeLivelinessIntervalMs?: number;
  /**
   * A node whose liveliness row is older than this is dead, and another store may boot under its name; a younger one
   * makes `boot()` fail with `NodeNameInUseError`. Must exceed `nodeLivelinessIntervalMs`; it is also how long a
   * crashed node's name stays blocked. In ms. @default 20000
   */
  nodeDeadAfterMs?: number;
  /** Where the store logs. @default silentLogger */
  logger?: Logger;
  /** The clock, in epoch ms (injectable for tests). @default Date.now */
  now?: () => number;
}

/** {@link StoreOptions} with every default applied and validated. */
export interface ResolvedStoreOptions {
  readonly nodeName: string;
  readonly maxDeliveryAttempts: number;
  readonly inClauseChunk: number;
  readonly migrate: boolean;
  readonly migrationsTableName: string;
  readonly matsMigrationsTableName: string;
  readonly transactionAttempts: number;
  readonly topicReplayMaxPerTopic: number;
  readonly topicIdleRetentionMs: number;
  readonly scavengeIntervalMs: number;
  readonly scavengeOverlapMs: number;
  readonly scavengeMinAgeMs: number;
  readonly connectTimeoutMs: number;
  readonly userLockTimeoutMs: number;
  readonly nodeLivelinessIntervalMs: number;
  readonly nodeDeadAfterMs: number;
  readonly logger: Logger;
  readonly now: () => number;
}

const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/**
 * Applies defaults and validates. `dialect` decides the `migrate` default (on for embedded SQLite).
 * @throws ConfigError naming the offending field.
 */
export function resolveStoreOptions(options: StoreOptions, dialect: Dialect): ResolvedStoreOptions {
  const input = options as Partial<StoreOptions> | undefined;
  if (!input || typeof input !== 'object') throw new ConfigError('options', 'must be an object');
  const nodeName = input.nodeName;
  if (typeof nodeName !== 'string' || nodeName.length === 0 || nodeName.length > 255) {
    throw new ConfigError('nodeName', 'required: a string of 1 to 255 characters');
  }
  if (nodeName.trim() !== nodeName) {
    throw new ConfigError('nodeName', 'must not start or end with whitespace');
  }
  const migrate = input.migrate ?? dialect === 'sqlite';
  if (typeof migrate !== 'boolean') throw new ConfigError('migrate', 'must be a boolean');
  const logger = input.logger ?? silentLogger;
  if (typeof logger.child !== 'function') throw new ConfigError('logger', 'must implement Logger');
  const now = input.now ?? Date.now;
  if (typeof now !== 'function') throw new ConfigError('now', 'must be a function returning epoch ms');
  const nodeLivelinessIntervalMs = int('nodeLivelinessIntervalMs', input.nodeLivelinessIntervalMs, 5_000, 1);
  const nodeDeadAfterMs = int('nodeDeadAfterMs', input.nodeDeadAfterMs, 20_000, 1);
  if (nodeDeadAfterMs <= nodeLivelinessIntervalMs) {
    throw new ConfigError(
      'nodeDeadAfterMs',
      `must exceed nodeLivelinessIntervalMs (${nodeLivelinessIntervalMs}), got ${nodeDeadAfterMs}`,
    );
  }
  return {
    nodeName,
    maxDeliveryAttempts: int('maxDeliveryAttempts', input.maxDeliveryAttempts, 10, 1),
    inClauseChunk: int('inClauseChunk', input.inClauseChunk, 500, 1, 10_000),
    migrate,
    migrationsTableName: tableName(
      'migrationsTableName',
      input.migrationsTableName,
      'knex_migrations_matssocket',
    ),
    matsMigrationsTableName: tableName(
      'matsMigrationsTableName',
      input.matsMigrationsTableName,
      'knex_migrations_mats',
    ),
    transactionAttempts: int('transactionAttempts', input.transactionAttempts, 3, 1, 100),
    topicReplayMaxPerTopic: int('topicReplayMaxPerTopic', input.topicReplayMaxPerTopic, 1000, 1),
    topicIdleRetentionMs: int('topicIdleRetentionMs', input.topicIdleRetentionMs, 7 * 24 * 3_600_000, 0),
    scavengeIntervalMs: int('scavengeIntervalMs', input.scavengeIntervalMs, 5_400_000, 1),
    scavengeOverlapMs: int('scavengeOverlapMs', input.scavengeOverlapMs, 600_000, 0),
    scavengeMinAgeMs: int('scavengeMinAgeMs', input.scavengeMinAgeMs, 600_000, 0),
    connectTimeoutMs: int('connectTimeoutMs', input.connectTimeoutMs, 10_000, 1),
    userLockTimeoutMs: int('userLockTimeoutMs', input.userLockTimeoutMs, 10_000, 1),
    nodeLivelinessIntervalMs,
    nodeDeadAfterMs,
    logger: logger.child({ component: 'store', node: nodeName }),
    now,
  };
}

function int(
  field: string,
  value: unknown,
  fallback: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(field, `must be an integer in [${min}, ${max}], got ${show(value)}`);
  }
  return value;
}

function tableName(field: string, value: unknown, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !TABLE_NAME.test(value)) {
    throw new ConfigError(
      field,
      `must be a plain SQL identifier ([A-Za-z_][A-Za-z0-9_]*, max 63), got ${show(value)}`,
    );
  }
  return value;
}

/** A value for an error message (JSON where that says more than `String()`). */
function show(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean')
    return String(value);
  return JSON.stringify(value) ?? typeof value;
}
