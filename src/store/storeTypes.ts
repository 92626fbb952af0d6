/**
 * Row, input, result and filter types of the {@link ClusterStoreAndForward}. Times are epoch milliseconds; binary
 * columns come back as `Buffer` (a `Uint8Array`).
 */

// ---- Sessions -----------------------------------------------------------------------------------------------

/** Where a session is registered: the node and the connection on it. */
export interface SessionRegistration {
  sessionId: string;
  nodename: string;
  connectionId: string;
}

/** A session row's registration state under lock; `nodename`/`connectionId` are null when deregistered. */
export interface SessionState {
  nodename: string | null;
  connectionId: string | null;
}

/** What HELLO registers (new or resumed session). */
export interface SessionRegistrationInput {
  sessionId: string;
  userId: string;
  connectionId: string;
  /** The client's `clv`; truncated to 1024 characters for storage. */
  clientLib: string;
  appName: string;
  appVersion: string;
}

/** The outcome of a resume: the original creation time and the registration it replaced (if any). */
export interface ResumedSession {
  createdTs: number;
  previous: { nodename: string; connectionId: string } | null;
  /**
   * The session's undelivered outbox rows right after the resume, in stored order (batched resume with
   * `fetchOutbox` only): what the first forward round would fetch.
   */
  outbox?: StoredOutMessage[];
}

/** A session as reported by introspection, in the reference's short field names. */
export interface SessionInfo {
  /** session id */
  id: string;
  /** user id */
  uid: string;
  /** created timestamp */
  scts: number;
  /** liveliness timestamp */
  slts: number;
  /** client lib (`clv`) */
  clv: string;
  /** app name */
  an: string;
  /** app version */
  av: string;
  /** node name; absent when deregistered */
  nn?: string;
}

/** Filter for {@link ClusterStoreAndForward.getSessions} and `getSessionsCount`. All fields are ANDed. */
export interface SessionFilter {
  /** Only registered sessions (`nodename IS NOT NULL`). @default false */
  onlyActive?: boolean;
  userId?: string;
  appName?: string;
  /** Plain string comparison `app_version >= ?`, as the reference does. */
  appVersionAtOrAbove?: string;
  /** Leave this session out (HELLO resume: the resumed session does not count against the user limit). */
  excludeSessionId?: string;
  /**
   * Only sessions whose user id or session id starts with this (case-sensitive, on every database; an operator's
   * search box).
   */
  idPrefix?: string;
  /** Paging: only sessions with an id greater than this. (`getSessions` only.) */
  afterSessionId?: string;
  /** Paging: at most this many rows. (`getSessions` only.) @default 1000 */
  limit?: number;
}

/** A node of the cluster as the store knows it: its row in `mats_socket_node` and the sessions registered to it. */
export interface NodeInfo {
  nodeName: string;
  /** When the process now holding the name claimed it; null for a name known only from sessions registered to it. */
  startedTs: number | null;
  /** Its last liveliness update; null as for `startedTs`. */
  livelinessTs: number | null;
  /** Whether its liveliness is more recent than `nodeDeadAfterMs` (the store's option). */
  alive: boolean;
  /** Sessions registered to it (held by a connection on it, as far as the store knows). */
  sessions: number;
}

// ---- Inbox / outbox -----------------------------------------------------------------------------------------

/** One message id of one session. */
export interface MessageRef {
  sessionId: string;
  /** The client message id (inbox) */
  cmid: string;
}

/** Many message ids of one session (batch operations). */
export interface SessionIds {
  sessionId: string;
  ids: readonly string[];
}

/** Per-item outcome of a batch inbox insert. */
export type InboxInsertOutcome = 'STORED' | 'DUPLICATE' | 'SESSION_GONE';

/** A stored inbox row. */
export interface InboxEntry {
  storedTs: number;
  /** The stored answer envelope (with `msg`); absent means the answer was a plain ACK. */
  fullEnvelope?: string;
  binary?: Uint8Array;
}

/** The outbox message types. */
export type OutboxMessageType = 'SEND' | 'REQUEST' | 'RESOLVE' | 'REJECT';

/** A server-to-client message to store in a session's outbox. */
export interface OutboxMessageInput {
  sessionId: string;
  smid: string;
  /** For replies to client requests. */
  cmid?: string | null;
  traceId: string;
  type: OutboxMessageType;
  /** When the client request was received (replies). */
  requestTs?: number | null;
  /** The envelope JSON **without** `msg`. */
  envelope: string;
  /** The `msg` JSON. */
  messageText?: string | null;
  messageBinary?: Uint8Array | null;
  /** For a server-to-client REQUEST: its correlation, stored atomically with the message (same smid). */
  correlation?: Omit<RequestCorrelationInput, 'sessionId' | 'smid' | 'traceId'>;
  /**
   * A connection id of this node that will write the message from memory right after the commit. If the session
   * is registered to this node and that connection (read under the session lock), the row goes in already
   * attempted (delivery count 1, `attempted` in the result), so no fetch and no attempt mark follow; otherwise it
   * goes in as usual. A resume unmarks attempted rows, so a write that never happens is redelivered then.
   */
  attemptBy?: string;
}

/** The result of storing a message in an outbox: whether the session exists, and where to poke it. */
export interface StoreInOutboxResult {
  sessionExists: boolean;
  /** The session's current registration (null if gone or deregistered). */
  currentNode: SessionRegistration | null;
}

/** Per-message result of a batch outbox store. */
export interface StoreInOutboxBatchResult extends StoreInOutboxResult {
  /** The smid (or its correlation) already exists in this session; nothing was stored for this message. */
  smidInUse: boolean;
  /** Stored as attempted by its `attemptBy` connection: that connection must write it now. */
  attempted: boolean;
}

/** How a batch insert of the store (outbox messages, inbox ids) writes. */
export interface BatchWriteOptions {
  /**
   * On MySQL/MariaDB, in a transaction: the INSERT travels with the transaction's next statement (usually its
   * COMMIT) instead of on its own round trip. A duplicate (smid collision, inbox id already there) then fails
   * that statement, and so the transaction, instead of being reported per item (`smidInUse`, `DUPLICATE`): for
   * callers that commit the items again without it when their transaction fails (a group commit's fallback).
   * Elsewhere it does nothing. @default false
   */
  writeBehind?: boolean;
}

/** Outcomes of a `storeMessagesInOutboxAtCommit`, known once the transaction has committed. */
export interface OutboxAtCommit {
  /** Settles with the transaction's COMMIT (rejects if it fails); await it only after the commit. */
  readonly results: Promise<StoreInOutboxBatchResult[]>;
}

/** A message read from the outbox for forwarding. */
export interface StoredOutMessage {
  /** The row id: the per-session delivery order. */
  id: number;
  smid: string;
  cmid: string | null;
  traceId: string;
  type: OutboxMessageType;
  requestTs: number | null;
  storedTs: number;
  attemptTs: number | null;
  deliveryCount: number;
  envelope: string;
  messageText: string | null;
  messageBinary: Uint8Array | null;
}

// ---- Dead letters -------------------------------------------------------------------------------------------

/** Why a message was dead-lettered (BR-2). */
export type DeadLetterReason = 'delivery_limit' | 'undeliverable' | 'client_nack';

/** A dead letter without its bodies (list view). */
export interface DeadLetterSummary {
  id: number;
  sessionId: string;
  smid: string;
  userId: string | null;
  cmid: string | null;
  type: OutboxMessageType;
  traceId: string;
  deliveryCount: number;
  reason: DeadLetterReason;
  description: string | null;
  originalStoredTs: number;
  lastAttemptTs: number | null;
  deadLetteredTs: number;
  deadLetteredByNode: string;
}

/** A dead letter with envelope and message. */
export interface DeadLetter extends DeadLetterSummary {
  envelope: string;
  messageText: string | null;
  messageBinary: Uint8Array | null;
}

/** Filter for {@link ClusterStoreAndForward.listDeadLetters}. All fields are ANDed. */
export interface DeadLetterFilter {
  sessionId?: string;
  userId?: string;
  /** Dead-lettered at or after this time. */
  fromTs?: number;
  /** Dead-lettered before this time. */
  toTs?: number;
  /** Paging: only ids greater than this. */
  afterId?: number;
  /** Paging: only ids smaller than this (newest-first pages). */
  beforeId?: number;
  /** Newest (highest id) first. @default false */
  newestFirst?: boolean;
  /** Paging: at most this many rows. @default 100 (`countDeadLetters` ignores it) */
  limit?: number;
}

/** Which dead letters to purge: by ids, or older than a time (optionally of one session). */
export type DeadLetterPurge = { ids: readonly number[] } | { olderThanTs: number; sessionId?: string };

/** The outcome of a requeue. */
export type RequeueResult =
  | { ok: true; currentNode: SessionRegistration | null }
  | { ok: false; reason: 'SESSION_GONE' | 'SMID_IN_USE' | 'NOT_FOUND' };

// ---- Request correlations -----------------------------------------------------------------------------------

/** What is stored for a server-to-client request, to route the client's reply (BR-4). */
export interface RequestCorrelationInput {
  sessionId: string;
  smid: string;
  requestTs: number;
  expiresTs: number;
  replyTerminatorId: string;
  clientEndpointId: string;
  traceId: string;
  correlationText?: string | null;
  correlationBinary?: Uint8Array | null;
}

/** A stored request correlation. */
export interface RequestCorrelation {
  sessionId: string;
  smid: string;
  requestTs: number;
  expiresTs: number;
  replyTerminatorId: string;
  clientEndpointId: string;
  traceId: string;
  correlationText: string | null;
  correlationBinary: Uint8Array | null;
}

/** An expired correlation's key. */
export interface ExpiredCorrelation {
  sessionId: string;
  smid: string;
  expiresTs: number;
}

// ---- Topic replay log ---------------------------------------------------------------------------------------

/** A message published to a topic. */
export interface TopicMessageInput {
  topicId: string;
  traceId: string;
  /** The PUB envelope JSON without `msg`. */
  envelope: string;
  /** The `msg` JSON. */
  messageText?: string | null;
}

/** Where an appended message landed: PUB smid = `<epoch>.<seq>`. */
export interface TopicAppendResult {
  epoch: string;
  seq: number;
}

/** A logged topic message. */
export interface TopicLogMessage {
  seq: number;
  traceId: string;
  envelope: string;
  messageText: string | null;
  storedTs: number;
}

/** A topic's replay state and the requested messages. */
export interface TopicReplay {
  epoch: string;
  lastSeq: number;
  /** The smallest retained sequence; `lastSeq + 1` when nothing is retained. */
  oldestRetainedSeq: number;
  messages: TopicLogMessage[];
}

/** What {@link ClusterStoreAndForward.purgeTopicLog} deleted. */
export interface TopicPurgeResult {
  logRows: number;
  topics: number;
}

/** The outcome of a session registration under the per-user session cap. */
export type LimitedSessionRegistration =
  | { registered: true; createdTs: number }
  | {
      registered: false;
      /** The user's sessions counted (at or above the cap); nothing was stored. */
      sessionCount: number;
    };

/** The outcome of one session of a batched resume ({@link ClusterStoreAndForward.registerResumedSessions}). */
export type ResumeOutcome =
  | ({ kind: 'resumed' } & ResumedSession)
  /** The session does not exist (→ close 4001). */
  | { kind: 'notFound' }
  /** The session belongs to another user (→ close 1008); nothing was changed. */
  | { kind: 'wrongUser' }
  /** The user has `maxSessionsPerUser` other sessions (→ close 1008); nothing was changed. */
  | { kind: 'tooMany' };
