import type { ClusterStoreAndForward } from '../store/ClusterStoreAndForward.ts';
import { ConfigError } from '../errors.ts';
import { silentLogger, type Logger } from '../logging.ts';
import { noopMetrics, type Metrics } from '../metrics/Metrics.ts';
import { defaultClientFrameLimits } from '../protocol/parseClientFrame.ts';
import type { AuthenticationPluginFactory } from './auth/AuthenticationPlugin.ts';
import type { MatsFactory } from '../mats/MatsFactory.ts';

/** Protocol limits (docs/protocol.md section 12 and 2.6). Every field defaults to the documented value. */
export interface ServerLimits {
  /** Max text frame before HELLO is processed, in bytes; more closes 1009. @default 20480 (20 KiB) */
  preHelloMaxFrameBytes?: number;
  /** Max text frame after HELLO, in bytes; more closes 1009. @default 52428800 (50 MiB) */
  maxFrameBytes?: number;
  /** Sessions per userId (all states, the resumed one excluded); more closes 1008. @default 75 */
  maxSessionsPerUser?: number;
  /** Topic subscriptions per connection; the SUB that would exceed it closes 4004. @default 1500 */
  maxTopicsPerConnection?: number;
  /** Topic id length, in characters; longer closes 1008. @default 256 */
  maxTopicIdLength?: number;
  /** Information-bearing envelopes held while waiting for REAUTH; the excess gets RETRY. @default 100 */
  reauthHoldMaxEnvelopes?: number;
  /** Total `msg` text held while waiting for REAUTH, in bytes; the excess gets RETRY. @default 20971520 (20 MiB) */
  reauthHoldMaxBytes?: number;
  /** SUB/UNSUB held while waiting for REAUTH; more closes 1008. @default 3000 */
  reauthHoldMaxSubs?: number;
  /** Information-bearing envelopes received without progress while REAUTH is outstanding; more closes 1008. @default 500 */
  reauthMaxWithoutProgress?: number;
  /** Outbox messages per forward round (and per frame). @default 20 */
  maxMessagesPerForwardRound?: number;
  /** Socket writes of an outbox message before it is dead-lettered (BR-2). @default 10 */
  maxDeliveryAttempts?: number;
  /** Attempts to find a free smid when storing in an outbox. @default 100 */
  maxSmidAttempts?: number;
  /** Envelopes recorded per session for introspection. @default 200 */
  envelopesRecordedPerSession?: number;
  /**
   * Estimated memory of the envelopes recorded per session, in bytes (UTF-16 field text plus ~160 B per entry);
   * the oldest are dropped first. 0 records nothing. @default 262144 (256 KiB)
   */
  envelopesRecordedMaxBytes?: number;
  /** A recorded string field (`tid`, `desc`, ...) is cut to this many characters; `ids` share one such budget. @default 1024 */
  recordedFieldMaxChars?: number;
  /**
   * Connections whose session is not established yet (HELLO not processed), on this node; the upgrade that
   * would exceed it is refused with HTTP 503. @default 1000
   */
  maxUnauthenticatedConnections?: number;
  /** Like `maxUnauthenticatedConnections`, per remote IP address. @default 50 */
  maxUnauthenticatedConnectionsPerIp?: number;
  /**
   * Bytes read from a connection's socket (WebSocket framing included, compressed or not) before its HELLO is
   * processed; more closes 1009 at once, so a large pre-HELLO frame is not buffered to its end. Must leave room
   * for a `preHelloMaxFrameBytes` frame. @default 65536 (64 KiB)
   */
  preHelloMaxSocketBytes?: number;
  /**
   * Payload bytes of permessage-deflate messages received before HELLO is processed; more closes 1009 before
   * `ws` inflates the message. `ws` inflates a message whole (up to `maxFrameBytes`) before our code sees it, and
   * deflate reaches ~1000:1, so this bounds what an unauthenticated peer can make the node inflate: about 1000
   * times this, held twice while `ws` joins the inflated chunks (8 KiB: ~17 MB at worst). A HELLO with a JWT
   * compresses to 1-3 KiB. @default 8192 (8 KiB)
   */
  preHelloMaxCompressedBytes?: number;
  /** Length of a PING's `x`, in characters; longer closes 4004 (its PONG would echo it). @default 256 */
  maxPingIdLength?: number;
  /**
   * Bytes a connection may have waiting in its send buffer (`ws` bufferedAmount) when a new frame is written;
   * a frame that would pass it terminates the connection (the peer does not read) and deregisters the session.
   * A frame is always written into an empty buffer, so the bound is this plus one frame. @default 8388608 (8 MiB)
   */
  maxSendBufferBytes?: number;
  /**
   * Text of received frames waiting for an earlier frame of the connection to be processed (it awaits the plugin
   * or the store), in bytes; above it the socket is not read until half of it is processed (as for 64 frames).
   * @default 67108864 (64 MiB)
   */
  maxQueuedInboundBytes?: number;
  /**
   * Bytes per second a connection may send, on average; over it (beyond `inboundBurstBytes`) its socket is not read
   * until it is back within the rate. Each MiB a client sends costs the node ~13 ms of CPU (unmask, decode, parse),
   * so without a rate one connection can keep it busy. @default 4194304 (4 MiB/s)
   */
  maxInboundBytesPerSecond?: number;
  /** Bytes a connection may send at once before `maxInboundBytesPerSecond` applies. @default 16777216 (16 MiB) */
  inboundBurstBytes?: number;
  /** `clv` is truncated to this many characters for storage. @default 1024 */
  maxClientLibLength?: number;
  /**
   * Envelopes per client frame; more closes 4004. Each is parsed and held before the first is handled, so this
   * bounds the work one frame can queue. @default 10000
   */
  maxEnvelopesPerFrame?: number;
  /** Ids in one client ACK/NACK/ACK2 envelope's `ids`; more closes 4004. @default 5000 */
  maxIdsPerEnvelope?: number;
  /** Ids of all ACK/NACK/ACK2 envelopes of one client frame together; more closes 4004. @default 10000 */
  maxIdsPerFrame?: number;
  /**
   * A smid the client sends (ACK/NACK, RESOLVE/REJECT, SUB), in characters: the server makes them, and the store
   * keeps at most 64, so a longer one is malformed and closes 4004. @default 64
   */
  maxServerMessageIdLength?: number;
  /**
   * A REQUEST's `to`, in ms: a larger one is clamped to this. It becomes the broker TTL of a non-essential
   * forward (`to` + 15 s), which RabbitMQ refuses (closing the shared channel) beyond 2^32-1 ms; at most
   * 4294952295. @default 86400000 (24 h)
   */
  maxClientTimeoutMs?: number;
  /** A client ACK/NACK `desc`, in characters: a longer one is truncated (it is stored with dead letters). @default 1024 */
  maxDescriptionLength?: number;
  /**
   * A SEND/REQUEST/RESOLVE/REJECT `tid`, in characters: it travels as the backend's traceId in broker headers and
   * store rows, so a longer one is NACKed. @default 1024
   */
  maxTraceIdLength?: number;
  /**
   * Nesting depth of a client `msg` (arrays and objects): a deeper one is NACKed, since serializing it later
   * would overflow the stack inside a commit shared with other sessions. @default 1000 (Jackson's default)
   */
  maxMessageDepth?: number;
  /**
   * Information-bearing client messages being handled per connection (handler, commit, answer); the next one
   * waits, and so does the connection's frame processing, and the socket stops being read. One group-commit
   * batch: measured with 100,000 SENDs from one client on SQLite, another client's forwarded REQUEST took
   * ~0.2 s with 64 and ~4 s with 256, since every store step of it queues behind this many. @default 64
   */
  maxInFlightPerConnection?: number;
  /** The same over all connections of this node (they wait in arrival order). @default 2048 */
  maxInFlightPerNode?: number;
  /**
   * Client ACK/NACK/ACK2 ids being settled per connection; more waits (and the socket stops being read) until
   * earlier ones are settled. @default 10000
   */
  maxAckIdsInFlightPerConnection?: number;
}

/** Delays of docs/protocol.md section 11 and the connection timeouts of 2.6, in ms. */
export interface ServerTimings {
  /** From open until HELLO is processed; more closes 1001. @default 5000 */
  helloTimeoutMs?: number;
  /**
   * How long a connection's send buffer may hold data without any of it being flushed to the socket; then the
   * connection is terminated (the peer does not read) and its session deregistered. Inbound traffic does not
   * count: a peer that only sends is not alive as a reader. @default 30000
   */
  sendDrainTimeoutMs?: number;
  /** Without any inbound frame after HELLO; more closes 1001 and deregisters. @default 75000 */
  idleTimeoutMs?: number;
  /** WebSocket-level ping interval (BR-6); 2 unanswered pings terminate the connection. 0 disables. @default 25000 */
  wsPingIntervalMs?: number;
  /** ACK for a SEND, any NACK, RETRY. @default 4 */
  ackDelayMs?: number;
  /** ACK for a REQUEST (elidable) or for a client RESOLVE/REJECT. @default 100 */
  requestAckDelayMs?: number;
  /** Insta RESOLVE. @default 2 */
  instaResolveDelayMs?: number;
  /** Insta REJECT. @default 4 */
  instaRejectDelayMs?: number;
  /** ACK2. @default 25 */
  ack2DelayMs?: number;
  /** SUB_OK / SUB_LOST / SUB_NO_AUTH and REAUTH on the incoming path. @default 2 */
  subReplyDelayMs?: number;
  /** PUB delivery to local subscribers. @default 10 */
  pubDelayMs?: number;
  /** The forwarder's pause after a failed socket write. @default 2500 */
  forwardWriteFailurePauseMs?: number;
  /** Group commit: how long the committer waits to gather items. @default 2 */
  groupCommitWindowMs?: number;
  /** Group commit: items per transaction at most. @default 64 */
  groupCommitMaxItems?: number;
  /** Coalescing window of pokes to other nodes. @default 2 */
  pokeCoalesceMs?: number;
  /**
   * How long ACK completions, ACK2 inbox deletes and delivery-attempt marks gather before their batched store
   * write. None of them is on a message's way to the client, so a longer window costs no latency and saves
   * statements at low load. @default 25
   */
  storeBatchWindowMs?: number;
  /**
   * How long forwarding (outbox fetch, attempt marks), ACK completions and ACK2 inbox deletes are retried while the
   * database is unreachable (a restart), ms; after that the failure is logged, and forwarding resumes with the next
   * poke or self-heal sweep, ACKed rows stay until the session resumes or ends. 0: no retry.
   * @default 60000
   */
  databaseOutageRetryMs?: number;
  /**
   * After the broker connection comes back: how long to wait (for this node's control queue to be consuming
   * again) before forwarding every live session with pending messages, whose pokes may have been lost meanwhile.
   * @default 500
   */
  reconnectHealDelayMs?: number;
  /** Default timeout of a server-to-client request (BR-4). @default 600000 (10 min) */
  serverRequestTimeoutMs?: number;
  /** Grace period of `stop()` when none is given. @default 5000 */
  stopGraceMs?: number;
}

/** Scheduled jobs (docs/store.md section 8), intervals in ms; each gets a constant random 0-10 % extra per node. */
export interface ServerJobOptions {
  /** Liveliness update of this node's sessions. @default 54000 */
  livelinessIntervalMs?: number;
  /** Session timeout check. @default 300000 */
  timeoutCheckIntervalMs?: number;
  /** A session times out this long after its last liveliness update. @default 259200000 (3 days) */
  sessionTimeoutMs?: number;
  /** Remnant scavenger. @default 5400000 */
  scavengeIntervalMs?: number;
  /** Self-heal sweep (BR-3). @default 30000 */
  selfHealIntervalMs?: number;
  /** Outbox rows older than this, unattempted, for a live session trigger the forwarder. @default 10000 */
  selfHealMinAgeMs?: number;
  /** Rows registered to this node but not live here are deregistered when their liveliness is this old. @default 120000 */
  selfHealStaleRegistrationMs?: number;
  /** Request timeout sweep (BR-4). @default 5000 */
  requestTimeoutSweepMs?: number;
  /** Expired correlations handled per sweep round. @default 100 */
  requestTimeoutSweepBatch?: number;
  /** Topic log purge. @default 60000 */
  topicPurgeIntervalMs?: number;
  /** DLQ retention job interval. @default 86400000 (24 h) */
  dlqRetentionIntervalMs?: number;
  /** Dead letters older than this are purged; 0 keeps them forever. @default 2592000000 (30 days) */
  dlqRetentionMs?: number;
  /** Outbox depth gauge refresh (metrics). 0 disables. @default 30000 */
  outboxDepthIntervalMs?: number;
  /** Run the jobs at all (tests of single pieces may turn them off). @default true */
  enabled?: boolean;
}

/** Options of a {@link MatsSocketServer} node. */
export interface MatsSocketServerOptions {
  /** This node's name, unique among running nodes (sessions are registered under it). Must equal the store's. */
  nodeName: string;
  /**
   * The MatsSocket instance name, shared by all nodes of a cluster; namespaces the internal endpoints
   * (`MatsSocket.<inst>.replyHandler`, ...). @default 'MatsSocket'
   */
  instanceName?: string;
  /** The node's Mats factory (its broker connection and backend endpoints). The caller owns and stops it. */
  matsFactory: MatsFactory;
  /** The shared store. The caller owns and closes it. */
  store: ClusterStoreAndForward;
  /** Creates one authentication plugin instance per connection (at the WebSocket upgrade). */
  authenticationPlugin: AuthenticationPluginFactory;
  /** @default silentLogger */
  logger?: Logger;
  /** @default noopMetrics */
  metrics?: Metrics;
  /** Protocol limits. */
  limits?: ServerLimits;
  /** Protocol delays and timeouts. */
  timings?: ServerTimings;
  /** Scheduled jobs. */
  jobs?: ServerJobOptions;
  /** Concurrency of the reply-handler terminator (at least 8). @default 16 */
  replyHandlerConcurrency?: number;
  /**
   * Node reply queues (docs/protocol.md 8.6): a node takes one at start that no live node holds, and the replies to
   * the requests it forwards go there. It consumes its own at high priority, and every other one at low priority,
   * so a reply usually reaches the node holding the session (no poke, no fetch) and is still consumed when that node
   * is gone. Give every node of a cluster the same value, at least the number of nodes (nodes beyond share one);
   * 0: all replies go to the shared `replyHandler` queue, consumed by any node. From 0 to 64. @default 8
   */
  nodeReplyQueues?: number;
  /** Also dead-letter NACKed server-to-client messages (reason `client_nack`). @default false */
  deadLetterOnNack?: boolean;
  /** Topic replay log retention (BR-1), in ms; 0 disables replay (reference behaviour). @default 300000 */
  topicReplayRetentionMs?: number;
  /** Register the built-in endpoints `MatsSocket.matsSocketPing` and `MatsSocket.matsPing`. @default true */
  builtInEndpoints?: boolean;
  /**
   * WebSocket permessage-deflate (docs/protocol.md 2.5), negotiated when the client offers it, without context
   * takeover in either direction: each frame is compressed on its own, so frames shorter than `thresholdBytes`
   * are sent as they are. (With context takeover every frame, however small, goes through zlib: measured here
   * at ~0.4 ms CPU per small echo, five times the frame's own cost.) `false` declines the extension.
   * @default { thresholdBytes: 1024 }
   */
  compression?: false | { thresholdBytes?: number };
  /**
   * Origins (`scheme://host[:port]`) whose browser pages may open a WebSocket to this node; an upgrade whose
   * `Origin` header is not listed is refused with HTTP 403, before the plugin's `checkOrigin`. Compared after
   * URL normalisation (case, default ports). An upgrade without `Origin` is allowed: only browsers send it, and
   * the check protects against cross-site pages, not against other programs. `undefined` allows every origin,
   * as the compat server does. @default undefined (all origins)
   */
  allowedOrigins?: readonly string[];
  /** The clock, epoch ms. @default Date.now */
  now?: () => number;
}

/** Every option resolved. */
export interface ResolvedServerOptions {
  nodeName: string;
  instanceName: string;
  matsFactory: MatsFactory;
  store: ClusterStoreAndForward;
  authenticationPlugin: AuthenticationPluginFactory;
  logger: Logger;
  metrics: Metrics;
  limits: Required<ServerLimits>;
  timings: Required<ServerTimings>;
  jobs: Required<ServerJobOptions>;
  replyHandlerConcurrency: number;
  nodeReplyQueues: number;
  deadLetterOnNack: boolean;
  topicReplayRetentionMs: number;
  builtInEndpoints: boolean;
  compression: false | { thresholdBytes: number };
  /** Normalised origins; undefined allows all. */
  allowedOrigins: ReadonlySet<string> | undefined;
  now: () => number;
}

/** RabbitMQ's largest per-message TTL (2^32-1 ms) less the 15 s a non-essential forward adds (docs/protocol.md 8.6). */
const MAX_CLIENT_TIMEOUT_MS = 2 ** 32 - 1 - 15_000;

const KiB = 1024;
const MiB = 1024 * KiB;

const limitDefaults: Required<ServerLimits> = {
  preHelloMaxFrameBytes: 20 * KiB,
  maxFrameBytes: 50 * MiB,
  maxSessionsPerUser: 75,
  maxTopicsPerConnection: 1500,
  maxTopicIdLength: 256,
  reauthHoldMaxEnvelopes: 100,
  reauthHoldMaxBytes: 20 * MiB,
  reauthHoldMaxSubs: 3000,
  reauthMaxWithoutProgress: 500,
  maxMessagesPerForwardRound: 20,
  maxDeliveryAttempts: 10,
  maxSmidAttempts: 100,
  envelopesRecordedPerSession: 200,
  envelopesRecordedMaxBytes: 256 * KiB,
  recordedFieldMaxChars: 1024,
  maxUnauthenticatedConnections: 1000,
  maxUnauthenticatedConnectionsPerIp: 50,
  preHelloMaxSocketBytes: 64 * KiB,
  preHelloMaxCompressedBytes: 8 * KiB,
  maxPingIdLength: 256,
  maxSendBufferBytes: 8 * MiB,
  maxQueuedInboundBytes: 64 * MiB,
  maxInboundBytesPerSecond: 4 * MiB,
  inboundBurstBytes: 16 * MiB,
  maxClientLibLength: 1024,
  // The frame parser's own defaults, so the two cannot drift apart.
  ...defaultClientFrameLimits,
  maxTraceIdLength: 1024,
  maxMessageDepth: 1000,
  maxInFlightPerConnection: 64,
  maxInFlightPerNode: 2048,
  maxAckIdsInFlightPerConnection: 10_000,
};

const timingDefaults: Required<ServerTimings> = {
  helloTimeoutMs: 5000,
  sendDrainTimeoutMs: 30_000,
  idleTimeoutMs: 75_000,
  wsPingIntervalMs: 25_000,
  ackDelayMs: 4,
  requestAckDelayMs: 100,
  instaResolveDelayMs: 2,
  instaRejectDelayMs: 4,
  ack2DelayMs: 25,
  subReplyDelayMs: 2,
  pubDelayMs: 10,
  forwardWriteFailurePauseMs: 2500,
  groupCommitWindowMs: 2,
  groupCommitMaxItems: 64,
  pokeCoalesceMs: 2,
  storeBatchWindowMs: 25,
  databaseOutageRetryMs: 60_000,
  reconnectHealDelayMs: 500,
  serverRequestTimeoutMs: 600_000,
  stopGraceMs: 5000,
};

const jobDefaults: Required<ServerJobOptions> = {
  livelinessIntervalMs: 54_000,
  timeoutCheckIntervalMs: 300_000,
  sessionTimeoutMs: 3 * 24 * 3600_000,
  scavengeIntervalMs: 5_400_000,
  selfHealIntervalMs: 30_000,
  selfHealMinAgeMs: 10_000,
  selfHealStaleRegistrationMs: 120_000,
  requestTimeoutSweepMs: 5000,
  requestTimeoutSweepBatch: 100,
  topicPurgeIntervalMs: 60_000,
  dlqRetentionIntervalMs: 24 * 3600_000,
  dlqRetentionMs: 30 * 24 * 3600_000,
  outboxDepthIntervalMs: 30_000,
  enabled: true,
};

/** Fields that must be >= 1 (everything else numeric may be 0). */
const positiveFields = new Set<string>([
  'preHelloMaxFrameBytes',
  'maxFrameBytes',
  'maxSessionsPerUser',
  'maxTopicsPerConnection',
  'maxTopicIdLength',
  'reauthHoldMaxEnvelopes',
  'reauthHoldMaxSubs',
  'reauthMaxWithoutProgress',
  'maxMessagesPerForwardRound',
  'maxDeliveryAttempts',
  'maxSmidAttempts',
  'maxClientLibLength',
  'recordedFieldMaxChars',
  'maxUnauthenticatedConnections',
  'maxUnauthenticatedConnectionsPerIp',
  'preHelloMaxSocketBytes',
  'preHelloMaxCompressedBytes',
  'maxPingIdLength',
  'maxSendBufferBytes',
  'maxEnvelopesPerFrame',
  'maxIdsPerEnvelope',
  'maxIdsPerFrame',
  'maxServerMessageIdLength',
  'maxClientTimeoutMs',
  'maxDescriptionLength',
  'maxTraceIdLength',
  'maxMessageDepth',
  'maxInFlightPerConnection',
  'maxInFlightPerNode',
  'maxAckIdsInFlightPerConnection',
  'maxQueuedInboundBytes',
  'maxInboundBytesPerSecond',
  'inboundBurstBytes',
  'helloTimeoutMs',
  'sendDrainTimeoutMs',
  'idleTimeoutMs',
  'groupCommitMaxItems',
  'livelinessIntervalMs',
  'timeoutCheckIntervalMs',
  'sessionTimeoutMs',
  'scavengeIntervalMs',
  'selfHealIntervalMs',
  'requestTimeoutSweepMs',
  'requestTimeoutSweepBatch',
  'topicPurgeIntervalMs',
  'dlqRetentionIntervalMs',
  'serverRequestTimeoutMs',
]);

/**
 * @internal The defaults of the option groups `limits`, `timings` and `jobs` (their keys are the valid options), for
 * validators of other configuration sources (the gateway's configuration file) that report every problem at once.
 */
export const serverOptionGroupDefaults = {
  limits: limitDefaults,
  timings: timingDefaults,
  jobs: jobDefaults,
} as const;

/** @internal The smallest value a numeric option of {@link serverOptionGroupDefaults} accepts (1 or 0). */
export function serverOptionMinimum(key: string): number {
  return positiveFields.has(key) ? 1 : 0;
}

/** @internal The largest `limits.maxClientTimeoutMs`, in ms. */
export const MAX_CLIENT_TIMEOUT_OPTION_MS = MAX_CLIENT_TIMEOUT_MS;

function resolveGroup<T extends object>(group: string, input: Partial<T> | undefined, defaults: T): T {
  if (input !== undefined && (typeof input !== 'object' || input === null)) {
    throw new ConfigError(group, 'must be an object');
  }
  const out: Record<string, unknown> = { ...(defaults as Record<string, unknown>) };
  for (const [key, value] of Object.entries(input ?? {})) {
    if (value === undefined) continue;
    if (!(key in defaults)) throw new ConfigError(`${group}.${key}`, 'unknown option');
    const fallback = (defaults as Record<string, unknown>)[key];
    if (typeof fallback === 'boolean') {
      if (typeof value !== 'boolean') throw new ConfigError(`${group}.${key}`, 'must be a boolean');
    } else {
      const min = positiveFields.has(key) ? 1 : 0;
      if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
        throw new ConfigError(`${group}.${key}`, `must be a number >= ${min}, got ${JSON.stringify(value)}`);
      }
    }
    out[key] = value;
  }
  return out as T;
}

/**
 * Applies the defaults (docs/protocol.md §12, docs/store.md §9) and validates.
 * @throws ConfigError naming the offending field.
 */
export function resolveServerOptions(options: MatsSocketServerOptions): ResolvedServerOptions {
  if (!options || typeof options !== 'object') throw new ConfigError('options', 'must be an object');
  const { nodeName, matsFactory, store, authenticationPlugin } = options;
  if (typeof nodeName !== 'string' || nodeName.length === 0 || nodeName.length > 255) {
    throw new ConfigError('nodeName', 'required: a string of 1 to 255 characters');
  }
  const instanceName = options.instanceName ?? 'MatsSocket';
  if (typeof instanceName !== 'string' || !/^[A-Za-z0-9_-]{1,100}$/.test(instanceName)) {
    throw new ConfigError('instanceName', 'must match [A-Za-z0-9_-]{1,100}');
  }
  if (!matsFactory || typeof matsFactory !== 'object') throw new ConfigError('matsFactory', 'required');
  if (!store || typeof store !== 'object') throw new ConfigError('store', 'required');
  if (store.options.nodeName !== nodeName) {
    throw new ConfigError('nodeName', `must equal the store's nodeName '${store.options.nodeName}'`);
  }
  if (typeof authenticationPlugin !== 'function') {
    throw new ConfigError('authenticationPlugin', 'must be a function creating a plugin per connection');
  }
  const logger = options.logger ?? silentLogger;
  if (typeof logger.child !== 'function') throw new ConfigError('logger', 'must implement Logger');
  const replyHandlerConcurrency = options.replyHandlerConcurrency ?? 16;
  if (!Number.isInteger(replyHandlerConcurrency) || replyHandlerConcurrency < 8) {
    throw new ConfigError('replyHandlerConcurrency', 'must be an integer >= 8');
  }
  const nodeReplyQueues = options.nodeReplyQueues ?? 8;
  if (!Number.isInteger(nodeReplyQueues) || nodeReplyQueues < 0 || nodeReplyQueues > 64) {
    throw new ConfigError('nodeReplyQueues', 'must be an integer from 0 to 64');
  }
  const topicReplayRetentionMs = options.topicReplayRetentionMs ?? 300_000;
  if (typeof topicReplayRetentionMs !== 'number' || !(topicReplayRetentionMs >= 0)) {
    throw new ConfigError('topicReplayRetentionMs', 'must be a number >= 0');
  }
  const now = options.now ?? Date.now;
  if (typeof now !== 'function') throw new ConfigError('now', 'must be a function');
  const timings = resolveGroup('timings', options.timings, timingDefaults);
  if (timings.groupCommitMaxItems < 1) throw new ConfigError('timings.groupCommitMaxItems', 'must be >= 1');
  const limits = resolveGroup('limits', options.limits, limitDefaults);
  if (limits.maxClientTimeoutMs > MAX_CLIENT_TIMEOUT_MS) {
    throw new ConfigError('limits.maxClientTimeoutMs', `must be <= ${MAX_CLIENT_TIMEOUT_MS}`);
  }
  return {
    nodeName,
    instanceName,
    matsFactory,
    store,
    authenticationPlugin,
    logger: logger.child({ component: 'matssocket', node: nodeName }),
    metrics: options.metrics ?? noopMetrics,
    limits,
    timings,
    jobs: resolveGroup('jobs', options.jobs, jobDefaults),
    replyHandlerConcurrency,
    nodeReplyQueues,
    deadLetterOnNack: bool(options.deadLetterOnNack, false, 'deadLetterOnNack'),
    topicReplayRetentionMs,
    builtInEndpoints: bool(options.builtInEndpoints, true, 'builtInEndpoints'),
    compression: resolveCompression(options.compression),
    allowedOrigins: resolveAllowedOrigins(options.allowedOrigins),
    now,
  };
}

function resolveCompression(
  value: MatsSocketServerOptions['compression'],
): ResolvedServerOptions['compression'] {
  if (value === false) return false;
  if (value !== undefined && (typeof value !== 'object' || value === null)) {
    throw new ConfigError('compression', 'must be false or { thresholdBytes }');
  }
  const thresholdBytes = value?.thresholdBytes ?? 1024;
  if (!Number.isInteger(thresholdBytes) || thresholdBytes < 0) {
    throw new ConfigError('compression.thresholdBytes', 'must be an integer >= 0');
  }
  return { thresholdBytes };
}

function resolveAllowedOrigins(value: readonly string[] | undefined): ReadonlySet<string> | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) throw new ConfigError('allowedOrigins', 'must be an array of origins');
  const origins = new Set<string>();
  for (const entry of value as unknown[]) {
    const origin = typeof entry === 'string' ? normalizeOrigin(entry) : undefined;
    if (origin === undefined) {
      throw new ConfigError(
        'allowedOrigins',
        `not an origin (scheme://host[:port]): ${JSON.stringify(entry)}`,
      );
    }
    origins.add(origin);
  }
  return origins;
}

/** `scheme://host[:port]` in URL-normalised form, or undefined when `value` is not such an origin. */
export function normalizeOrigin(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  if (url.origin === 'null' || url.pathname.length > 1 || url.search || url.hash || url.username)
    return undefined;
  return url.origin;
}

function bool(value: unknown, fallback: boolean, field: string): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new ConfigError(field, 'must be a boolean');
  return value;
}
