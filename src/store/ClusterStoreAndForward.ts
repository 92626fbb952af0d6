import type { Knex } from 'knex';
import type { TransactionScript } from './TransactionScript.ts';
import type { Dialect } from './database.ts';
import type { ResolvedStoreOptions } from './StoreOptions.ts';
import type {
  DeadLetter,
  DeadLetterFilter,
  DeadLetterPurge,
  DeadLetterReason,
  DeadLetterSummary,
  ExpiredCorrelation,
  InboxEntry,
  InboxInsertOutcome,
  LimitedSessionRegistration,
  MessageRef,
  NodeInfo,
  OutboxAtCommit,
  OutboxMessageInput,
  RequestCorrelation,
  RequestCorrelationInput,
  RequeueResult,
  ResumedSession,
  ResumeOutcome,
  SessionFilter,
  SessionIds,
  SessionInfo,
  BatchWriteOptions,
  SessionRegistration,
  SessionRegistrationInput,
  SessionState,
  StoreInOutboxBatchResult,
  StoreInOutboxResult,
  StoredOutMessage,
  TopicAppendResult,
  TopicMessageInput,
  TopicPurgeResult,
  TopicReplay,
} from './storeTypes.ts';

export type * from './storeTypes.ts';

/**
 * The ClusterStoreAndForward (`docs/store.md`): the SQL database all nodes of a cluster share for sessions, the inbox
 * (client message de-duplication), the outbox (server-to-client store-and-forward), request correlations, dead
 * letters and the topic replay log.
 *
 * Conventions for every operation:
 * - `trx` (always the last, optional parameter) makes the operation **join** that transaction: no own commit, no
 *   retry. Without it the operation runs in its own transaction, retried on deadlock / lock timeout / busy.
 *   On SQLite (one connection) a caller holding a transaction MUST pass it, or the call waits for the connection.
 * - Failures are {@link DataAccessError} (with the driver error as `cause`) unless a typed domain error is
 *   documented: `MessageIdAlreadyExistsError`, `WrongUserError`, `SessionNotFoundError`.
 * - Every write of an inbox, outbox or correlation row first takes a shared lock on the session row
 *   ({@link lockSessionForShare}) and writes nothing if the session is gone, so a concurrent close can never leave
 *   orphan rows.
 * - Id lists of any length are accepted; they are sent in IN-lists of at most `inClauseChunk` ids.
 * - Times are epoch milliseconds from the store's clock (`options.now`).
 */
export interface ClusterStoreAndForward {
  /** The resolved options (node name, limits, clock). */
  readonly options: ResolvedStoreOptions;
  /** The SQL dialect of the underlying database. */
  readonly dialect: Dialect;
  /** The knex instance; use it (or {@link transaction}) to open transactions that operations then join. */
  readonly knex: Knex;

  // ---- 2.1 Lifecycle ------------------------------------------------------------------------------------------

  /**
   * Checks connectivity, migrates (when `migrate` is on) or verifies that the schema is at the latest migration
   * (else `DataAccessError` with code `SCHEMA_OUTDATED`), claims the node name (else `NodeNameInUseError`: a node
   * of this name is alive; its sessions are not touched) and keeps it alive every `nodeLivelinessIntervalMs`, then
   * deregisters every session registered under this node's name: a starting node holds no connections (BR-3).
   * Idempotent.
   */
  boot(): Promise<void>;
  /**
   * Takes one of `count` node reply queues for this node (after {@link boot}): the lowest that no live node holds,
   * else the one fewest hold (docs/store.md §4.8). @returns its index, from 0.
   */
  claimReplyQueue(count: number): Promise<number>;
  /**
   * Whether `other` is a connection to this store's database (after {@link boot}): it must see this node's claim of
   * its name. The server checks its Mats factory's `db` with it: replies and outbox rows committed through another
   * database would not be atomic with the store's.
   */
  isSameDatabase(other: Knex): Promise<boolean>;
  /**
   * The cluster's nodes: each claimed node name with its start and liveliness times, whether it is alive (liveliness
   * within `nodeDeadAfterMs`), and how many sessions are registered to it; for operators.
   */
  getNodes(trx?: Knex.Transaction): Promise<NodeInfo[]>;
  /** Stops the node liveliness heartbeat, frees the node name, and releases the knex pool if the store created it. Idempotent. */
  close(): Promise<void>;
  /**
   * Runs `fn` in a new transaction that operations can join, retrying the whole function on deadlock, lock
   * timeout or busy (so `fn` must be repeatable). Non-typed failures become `DataAccessError`.
   */
  transaction<T>(fn: (trx: Knex.Transaction) => Promise<T>, operation?: string): Promise<T>;
  /**
   * Like {@link transaction}, with a {@link TransactionScript}: on MySQL/MariaDB a transaction whose statements are
   * all held writes and reads at commit is sent as one query without a knex transaction; anything else takes the
   * knex transaction from `tx.knex()`.
   */
  script<T>(fn: (tx: TransactionScript) => Promise<T>, operation?: string): Promise<T>;

  // ---- 2.2 Sessions -------------------------------------------------------------------------------------------

  /**
   * Inserts a new session registered to this node and connection. @returns the creation time.
   * @throws MessageIdAlreadyExistsError if the session id exists (retry with a new id).
   */
  registerNewSession(session: SessionRegistrationInput, trx?: Knex.Transaction): Promise<number>;
  /**
   * Counts the user's sessions and, if fewer than `maxSessionsPerUser`, inserts the new one (as
   * {@link registerNewSession}), in one transaction serialized per user across the cluster: concurrent HELLOs of a
   * user on any node never exceed the cap. Always its own transaction (it holds a per-user lock).
   * @throws MessageIdAlreadyExistsError if the session id exists (retry with a new id).
   */
  registerNewSessionWithinUserLimit(
    session: SessionRegistrationInput,
    maxSessionsPerUser: number,
  ): Promise<LimitedSessionRegistration>;
  /**
   * Re-registers an existing session to this node and connection (row-locked; never delete+insert).
   * @throws SessionNotFoundError if the session is gone (→ close 4001).
   * @throws WrongUserError if it belongs to another user (→ close 1008); nothing is changed then.
   */
  registerResumedSession(session: SessionRegistrationInput, trx?: Knex.Transaction): Promise<ResumedSession>;
  /**
   * Batch form of a HELLO resume for many sessions in one transaction (a reconnect storm): per session, in order,
   * locks the row, checks the user and the per-user cap (the user's other sessions), re-registers it to this node
   * and connection, and unmarks its attempted outbox rows (as {@link outboxMessagesUnmarkAttemptedDelivery}).
   * Outcomes are per item, in order; a session that is not resumed is not changed. Always its own transaction.
   * With `fetchOutbox`, each resumed outcome carries the session's outbox (up to that many rows, unattempted, in
   * stored order, as {@link getMessagesFromOutbox} after the unmark), read in the same transaction.
   */
  registerResumedSessions(
    sessions: readonly SessionRegistrationInput[],
    maxSessionsPerUser: number,
    fetchOutbox?: number,
  ): Promise<ResumeOutcome[]>;
  /** The node and connection a session is registered to; null if the session is gone or deregistered. */
  getCurrentRegisteredNodeForSession(
    sessionId: string,
    trx?: Knex.Transaction,
  ): Promise<SessionRegistration | null>;
  /** Whether the session row exists, registered or not. */
  isSessionExists(sessionId: string, trx?: Knex.Transaction): Promise<boolean>;
  /** Sessions matching `filter`, ordered by session id, paged by `afterSessionId` and `limit`. */
  getSessions(filter?: SessionFilter, trx?: Knex.Transaction): Promise<SessionInfo[]>;
  /** How many sessions match `filter` (paging fields are ignored). HELLO uses `{userId, excludeSessionId}`. */
  getSessionsCount(filter?: SessionFilter, trx?: Knex.Transaction): Promise<number>;
  /**
   * Deregisters the session from this node, but only if it is still registered here under `connectionId`: a late
   * deregistration of an old connection is a no-op. @returns whether a row was changed.
   */
  deregisterSessionFromThisNode(
    sessionId: string,
    connectionId: string,
    trx?: Knex.Transaction,
  ): Promise<boolean>;
  /** Deregisters every session registered under this node's name (boot). @returns how many. */
  deregisterAllSessionsOfThisNode(trx?: Knex.Transaction): Promise<number>;
  /**
   * Sessions registered under this node's name whose liveliness time is before `notLiveSinceTs` (the self-heal
   * sweep subtracts its live set and deregisters the rest, guarded by connection id).
   */
  getSessionsRegisteredToThisNode(
    notLiveSinceTs: number,
    trx?: Knex.Transaction,
  ): Promise<SessionRegistration[]>;
  /**
   * Deletes the session and its inbox and outbox rows. Correlations (→ TIMEOUT later) and dead letters are kept.
   * @returns whether the session existed.
   */
  closeSession(sessionId: string, trx?: Knex.Transaction): Promise<boolean>;
  /**
   * {@link closeSession} for a connection ending its own session: only if the session is still registered to this
   * node under `connectionId`, so a superseded connection cannot delete the session its successor holds (nothing is
   * deleted then, not even box rows). @returns whether the session was deleted.
   */
  closeSessionOfConnection(sessionId: string, connectionId: string, trx?: Knex.Transaction): Promise<boolean>;
  /**
   * Sets the liveliness time of these sessions to now, for those registered to this node (a connection superseded
   * by a resume on another node keeps nothing alive).
   */
  notifySessionLiveliness(sessionIds: readonly string[], trx?: Knex.Transaction): Promise<void>;
  /**
   * Deletes sessions (and their box rows) not live since `notLiveSinceTs`. Each session is reported by exactly one
   * caller even when several nodes run this concurrently. @returns the session ids this call timed out.
   */
  timeoutSessions(notLiveSinceTs: number, trx?: Knex.Transaction): Promise<string[]>;
  /**
   * Deletes inbox/outbox rows whose session no longer exists, looking only at rows stored since the previous run
   * (with overlap; the first run looks back 2 × `scavengeIntervalMs`). @returns how many rows were deleted.
   */
  scavengeSessionRemnants(trx?: Knex.Transaction): Promise<number>;
  /**
   * Inside `trx`, takes a shared lock on the session row (a plain read on SQLite) and returns its registration
   * state; null means the session is gone and nothing may be written for it.
   */
  lockSessionForShare(sessionId: string, trx: Knex.Transaction): Promise<SessionState | null>;
  /** {@link lockSessionForShare} for many sessions in one statement per chunk; missing sessions are absent. */
  lockSessionsForShare(
    sessionIds: readonly string[],
    trx: Knex.Transaction,
  ): Promise<Map<string, SessionState>>;

  // ---- 2.3 Inbox ----------------------------------------------------------------------------------------------

  /**
   * Records a client message id, inside a savepoint so the enclosing transaction stays usable on a duplicate.
   * @throws MessageIdAlreadyExistsError on a duplicate.
   * @throws SessionNotFoundError if the session is gone.
   */
  storeMessageIdInInbox(sessionId: string, cmid: string, trx?: Knex.Transaction): Promise<void>;
  /** Batch form: many (session, cmid) pairs in one transaction; the outcome is reported per item, in order. */
  storeMessageIdsInInbox(
    items: readonly MessageRef[],
    trx?: Knex.Transaction,
    options?: BatchWriteOptions,
  ): Promise<InboxInsertOutcome[]>;
  /** Stores the full answer envelope (with `msg`) of a non-ACK outcome. @returns whether the row exists. */
  updateMessageInInbox(
    sessionId: string,
    cmid: string,
    fullEnvelope: string,
    binary?: Uint8Array | null,
    trx?: Knex.Transaction,
  ): Promise<boolean>;
  /** The inbox row; `fullEnvelope` absent means the answer was a plain ACK. null if there is no row. */
  getMessageFromInbox(sessionId: string, cmid: string, trx?: Knex.Transaction): Promise<InboxEntry | null>;
  /** Deletes inbox rows (client ACK2). Ids without a row are ignored. @returns how many were deleted. */
  deleteMessageIdsFromInbox(
    sessionId: string,
    cmids: readonly string[],
    trx?: Knex.Transaction,
  ): Promise<number>;
  /** Batch form of {@link deleteMessageIdsFromInbox} for many sessions, in one transaction. */
  deleteMessageIdsFromInboxBatch(entries: readonly SessionIds[], trx?: Knex.Transaction): Promise<number>;

  // ---- 2.4 Outbox ---------------------------------------------------------------------------------------------

  /**
   * Stores a server-to-client message (and, if given, its request correlation) in the session's outbox. If the
   * session is gone nothing is stored and `sessionExists` is false. Returns the registration to poke.
   * @throws MessageIdAlreadyExistsError if the smid is in use in this session (pick a new smid and retry).
   */
  storeMessageInOutbox(message: OutboxMessageInput, trx?: Knex.Transaction): Promise<StoreInOutboxResult>;
  /**
   * Batch form for many messages of many sessions in one transaction. Results are per message, in order; an smid
   * collision is reported as `smidInUse` (that message is not stored) instead of failing the batch.
   */
  storeMessagesInOutbox(
    messages: readonly OutboxMessageInput[],
    trx?: Knex.Transaction,
    options?: BatchWriteOptions,
  ): Promise<StoreInOutboxBatchResult[]>;
  /**
   * {@link storeMessagesInOutbox} as writes of the transaction script `tx`, on MySQL/MariaDB and SQLite: the writes
   * lock the sessions themselves (`INSERT … SELECT … JOIN mats_socket_session`, `LOCK IN SHARE MODE` on MySQL) and
   * the registrations are read at the commit, so the outcomes are known only after it (`docs/store.md` §6).
   * `undefined` where it does not apply (PostgreSQL, request correlations, a (session, smid) twice in the batch):
   * store the usual way then.
   */
  storeMessagesInOutboxAtCommit(
    messages: readonly OutboxMessageInput[],
    tx: TransactionScript,
  ): Promise<OutboxAtCommit | undefined>;
  /**
   * {@link storeMessageIdsInInbox} as a write of the transaction script `tx`, on MySQL/MariaDB and SQLite, for a
   * caller that commits the items again one by one when its transaction fails: the write locks the sessions itself
   * and must write every item (`expectRows`; a closed session, like a duplicate, then fails the transaction,
   * `causedByOptimisticConflict`), so if it commits every item was STORED (`docs/store.md` §6). false where it
   * does not apply (PostgreSQL, a (session, cmid) twice, more items than one statement takes): store the usual
   * way then.
   */
  storeMessageIdsInInboxAtCommit(items: readonly MessageRef[], tx: TransactionScript): Promise<boolean>;
  getMessagesFromOutbox(sessionId: string, max: number, trx?: Knex.Transaction): Promise<StoredOutMessage[]>;
  /**
   * Batch form for a group-commit forwarder: up to `maxPerSession` messages of each session in one statement (per
   * chunk of sessions). Every given session is a key of the result, with an empty list if it has nothing pending.
   */
  getMessagesFromOutboxBatch(
    sessionIds: readonly string[],
    maxPerSession: number,
    trx?: Knex.Transaction,
  ): Promise<Map<string, StoredOutMessage[]>>;
  /** Marks messages attempted (attempt time = now, delivery count + 1) after a socket write. @returns rows. */
  outboxMessagesAttemptedDelivery(
    sessionId: string,
    smids: readonly string[],
    trx?: Knex.Transaction,
  ): Promise<number>;
  /**
   * Marks rows attempted by row id ({@link StoredOutMessage.id}), any number of sessions in one transaction: what
   * the forwarder fetched and wrote. By id, so that a late mark never hits a dead letter requeued under the same smid
   * (a new row).
   */
  outboxRowsAttemptedDelivery(rowIds: readonly number[], trx?: Knex.Transaction): Promise<number>;
  /** Clears the attempt marks of all the session's outbox rows (resume). Never touches dead letters. */
  outboxMessagesUnmarkAttemptedDelivery(sessionId: string, trx?: Knex.Transaction): Promise<number>;
  /** Deletes outbox rows (client ACK/NACK). @returns how many were deleted. */
  outboxMessagesComplete(
    sessionId: string,
    smids: readonly string[],
    trx?: Knex.Transaction,
  ): Promise<number>;
  /** Batch form of {@link outboxMessagesComplete} for many sessions, in one transaction. */
  outboxMessagesCompleteBatch(entries: readonly SessionIds[], trx?: Knex.Transaction): Promise<number>;
  /**
   * Client ACKs and ACK2s of many sessions settled together: {@link outboxMessagesCompleteBatch} of `completed` and
   * {@link deleteMessageIdsFromInboxBatch} of `inboxDeleted`, on MySQL/MariaDB in one round trip (one transaction
   * sent with its COMMIT), elsewhere as the two deletes.
   */
  settleClientAcksBatch(completed: readonly SessionIds[], inboxDeleted: readonly SessionIds[]): Promise<void>;
  /** Moves outbox rows to the dead-letter table in one transaction. @returns the smids actually moved. */
  outboxMessagesDeadLetter(
    sessionId: string,
    smids: readonly string[],
    reason: DeadLetterReason,
    description?: string | null,
    trx?: Knex.Transaction,
  ): Promise<string[]>;
  /** Of `sessionIds`, those with unattempted outbox rows stored before `olderThanTs` (self-heal sweep). */
  hasPendingOutbox(
    sessionIds: readonly string[],
    olderThanTs: number,
    trx?: Knex.Transaction,
  ): Promise<string[]>;
  /**
   * Outbox rows (not yet ACKed or NACKed by the client) per session, for the given sessions; sessions without rows
   * are absent. For operators and the outbox-depth gauge (index `ix_mso_fetch` prefix).
   */
  getOutboxDepths(sessionIds: readonly string[], trx?: Knex.Transaction): Promise<Map<string, number>>;

  // ---- 2.5 Dead letters ---------------------------------------------------------------------------------------

  /**
   * Dead letters matching `filter`, ordered by id (newest first with `newestFirst`), paged by `afterId`/`beforeId`
   * and `limit` (bodies not included).
   */
  listDeadLetters(filter?: DeadLetterFilter, trx?: Knex.Transaction): Promise<DeadLetterSummary[]>;
  /** How many dead letters match `filter` (`limit` and `newestFirst` are ignored). */
  countDeadLetters(filter?: DeadLetterFilter, trx?: Knex.Transaction): Promise<number>;
  /** One dead letter including envelope and message; null if there is none with that id. */
  getDeadLetter(id: number, trx?: Knex.Transaction): Promise<DeadLetter | null>;
  /** Moves a dead letter back to the end of its session's outbox (same smid, delivery count 0). */
  requeueDeadLetter(id: number, trx?: Knex.Transaction): Promise<RequeueResult>;
  /** Deletes dead letters by ids, or older than a time (optionally of one session). @returns how many. */
  purgeDeadLetters(purge: DeadLetterPurge, trx?: Knex.Transaction): Promise<number>;

  // ---- 2.6 Request correlations -------------------------------------------------------------------------------

  /**
   * Stores the correlation of a server-to-client request; call it in the transaction that stores the REQUEST's
   * outbox row. @returns false (nothing stored) if the session is gone.
   * @throws MessageIdAlreadyExistsError if a correlation with this (session, smid) exists.
   */
  storeRequestCorrelation(correlation: RequestCorrelationInput, trx?: Knex.Transaction): Promise<boolean>;
  /**
   * Gets and deletes a correlation. Of several racing callers exactly one gets the row; the others get null.
   */
  getAndDeleteRequestCorrelation(
    sessionId: string,
    smid: string,
    trx?: Knex.Transaction,
  ): Promise<RequestCorrelation | null>;
  /** Up to `limit` correlations that expired before `nowTs`, oldest expiry first. */
  getExpiredRequestCorrelations(
    nowTs: number,
    limit: number,
    trx?: Knex.Transaction,
  ): Promise<ExpiredCorrelation[]>;

  // ---- 2.7 Topic replay log -----------------------------------------------------------------------------------

  /**
   * Appends to a topic's log under the topic row lock: gapless, commit-ordered sequence per topic. Creates the
   * topic (new random epoch) if needed, and trims the log to `topicReplayMaxPerTopic`.
   */
  appendTopicMessage(message: TopicMessageInput, trx?: Knex.Transaction): Promise<TopicAppendResult>;
  /** The topic's epoch, last and oldest retained sequence and up to `limit` messages after `afterSeq`. */
  getTopicReplay(
    topicId: string,
    afterSeq: number,
    limit: number,
    trx?: Knex.Transaction,
  ): Promise<TopicReplay | null>;
  /** Deletes log rows stored before `olderThanTs`, and topic rows long unused with an empty log. */
  purgeTopicLog(olderThanTs: number, trx?: Knex.Transaction): Promise<TopicPurgeResult>;
}
