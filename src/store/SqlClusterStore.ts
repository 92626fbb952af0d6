import type { Knex } from 'knex';
import type { TransactionScript } from './TransactionScript.ts';
import { DataAccessError } from '../errors.ts';
import type { ClusterStoreAndForward } from './ClusterStoreAndForward.ts';
import {
  createDatabase,
  dialectOf,
  parseDatabaseUrl,
  redactUrl,
  type DatabaseOptions,
  type Dialect,
} from './database.ts';
import { defaultMigrationSets, migrateLatest, verifySchemaLatest } from './migrate.ts';
import { toDataAccessError } from './sqlErrors.ts';
import { resolveStoreOptions, type ResolvedStoreOptions, type StoreOptions } from './StoreOptions.ts';
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
  BatchWriteOptions,
  SessionInfo,
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
import { settleClientAcksBatch } from './sql/clientAckQueries.ts';
import { storeMessageIdsInInboxAtCommit } from './sql/inboxAtCommit.ts';
import { storeMessagesInOutboxAtCommit } from './sql/outboxAtCommit.ts';
import * as correlations from './sql/correlationQueries.ts';
import * as deadLetters from './sql/deadLetterQueries.ts';
import * as inbox from './sql/inboxQueries.ts';
import * as nodes from './sql/nodeQueries.ts';
import * as outbox from './sql/outboxQueries.ts';
import * as cleanup from './sql/sessionCleanup.ts';
import * as sessions from './sql/sessionQueries.ts';
import { registerNewSessionWithinUserLimit } from './sql/sessionLimit.ts';
import { registerResumedSessions } from './sql/sessionResume.ts';
import { StoreContext } from './sql/StoreContext.ts';
import * as topics from './sql/topicQueries.ts';
import { newIncarnation } from './nodeIncarnation.ts';

/**
 * The {@link ClusterStoreAndForward} on SQL through knex: runs unchanged on MySQL/MariaDB, PostgreSQL and SQLite
 * (`docs/store.md`). Operations live in `sql/*Queries.ts` by concern; this class wires them to one {@link StoreContext}.
 *
 * The knex instance belongs to the caller unless the store created it ({@link SqlClusterStore.fromUrl}). For the
 * isolation level the store relies on (READ COMMITTED on MySQL/MariaDB), create it with `createDatabase()`.
 */
export class SqlClusterStore implements ClusterStoreAndForward {
  readonly options: ResolvedStoreOptions;
  readonly dialect: Dialect;
  readonly knex: Knex;
  private readonly ctx: StoreContext;
  private readonly ownsKnex: boolean;
  private booted: Promise<void> | undefined;
  private closed: Promise<void> | undefined;
  /** This boot of this process, as recorded in the node row (`mats_socket_node`). */
  private readonly incarnation = newIncarnation();
  private heartbeat: NodeJS.Timeout | undefined;
  private nameClaimed = false;

  /**
   * @param knex the database; the caller owns it unless `ownsKnex` (then {@link close} destroys it).
   * @throws ConfigError if an option is invalid.
   */
  constructor(knex: Knex, options: StoreOptions, ownsKnex = false) {
    this.dialect = dialectOf(knex);
    this.options = resolveStoreOptions(options, this.dialect);
    this.knex = knex;
    this.ctx = new StoreContext(knex, this.dialect, this.options);
    this.ownsKnex = ownsKnex;
  }

  /**
   * Creates a store on its own knex instance (destroyed by {@link close}) from a `MATSSOCKET_DB_URL`-style URL:
   * `mysql://…`, `mariadb://…`, `postgres://…`, `postgresql://…` or `sqlite:<file>` / `sqlite::memory:`.
   */
  static fromUrl(url: string, options: StoreOptions & Pick<DatabaseOptions, 'poolMax'>): SqlClusterStore {
    const parsed = parseDatabaseUrl(url, 'dbUrl');
    const dbOptions: DatabaseOptions = { connectTimeoutMs: options.connectTimeoutMs ?? 10_000 };
    if (options.poolMax !== undefined) dbOptions.poolMax = options.poolMax;
    const knex = createDatabase(parsed, dbOptions);
    try {
      return new SqlClusterStore(knex, options, true);
    } catch (err) {
      void knex.destroy();
      throw err;
    }
  }

  boot(): Promise<void> {
    this.booted ??= this.doBoot().catch((err: unknown) => {
      this.booted = undefined;
      throw err;
    });
    return this.booted;
  }

  claimReplyQueue(count: number): Promise<number> {
    return nodes.claimReplyQueue(this.ctx, this.incarnation, count);
  }

  private async doBoot(): Promise<void> {
    const log = this.options.logger;
    await this.checkConnectivity();
    if (this.dialect === 'mysql') await this.warnUnlessReadCommitted();
    const sets = defaultMigrationSets(this.options);
    if (this.options.migrate) {
      for (const r of await migrateLatest(this.knex, sets)) {
        if (r.applied.length > 0) log.info({ set: r.name, applied: r.applied }, 'applied migrations');
      }
    } else {
      for (const s of await verifySchemaLatest(this.knex, sets)) {
        if (s.unknown.length > 0) {
          log.warn(
            { set: s.name, unknown: s.unknown },
            'the database has migrations this code does not know',
          );
        }
      }
    }
    // Before any session write: a node alive under this name keeps its sessions (NodeNameInUseError).
    await nodes.claimNodeName(this.ctx, this.incarnation);
    this.nameClaimed = true;
    this.startHeartbeat();
    const n = await this.deregisterAllSessionsOfThisNode();
    log.info({ deregistered: n }, 'store booted');
  }

  isSameDatabase(other: Knex): Promise<boolean> {
    if (other === this.knex) return Promise.resolve(true);
    return nodes.seesNodeClaim(this.ctx, other, this.incarnation);
  }

  getNodes(trx?: Knex.Transaction): Promise<NodeInfo[]> {
    return nodes.getNodes(this.ctx, trx);
  }

  /** Keeps the node row alive while the store is open; a lost name is logged (another process took it). */
  private startHeartbeat(): void {
    clearInterval(this.heartbeat);
    let warned = false;
    this.heartbeat = setInterval(() => {
      nodes.notifyNodeLiveliness(this.ctx, this.incarnation).then(
        (held) => {
          if (held || warned) return;
          warned = true;
          this.options.logger.error(
            { nodeName: this.options.nodeName },
            'another process took over this node name after this one looked dead: stop one of them',
          );
        },
        (err: unknown) => this.options.logger.warn({ err }, 'could not refresh the node liveliness'),
      );
    }, this.options.nodeLivelinessIntervalMs);
    // The row is best-effort liveness, not a reason to keep the process alive.
    this.heartbeat.unref();
  }

  /** A `SELECT 1` bounded by `connectTimeoutMs`, whatever the driver's own timeouts are. */
  private async checkConnectivity(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(new DataAccessError(`database not reachable within ${this.options.connectTimeoutMs} ms`)),
        this.options.connectTimeoutMs,
      );
    });
    try {
      await Promise.race([this.knex.raw('SELECT 1'), timeout]);
    } catch (err) {
      const where = this.describeConnection();
      throw toDataAccessError(err, `connecting to the database${where ? ` (${where})` : ''}`);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The store relies on READ COMMITTED on MySQL/MariaDB (`docs/store.md` 6): at REPEATABLE READ, gap locks make
   * concurrent box writers deadlock. `createDatabase()` sets it per connection; a caller's own knex may not.
   */
  private async warnUnlessReadCommitted(): Promise<void> {
    const read = async (variable: string): Promise<string | undefined> => {
      const [rows] = (await this.knex.raw(`SELECT @@SESSION.${variable} AS i`)) as [{ i: string }[]];
      return rows[0]?.i;
    };
    try {
      const level = await read('transaction_isolation').catch(() => read('tx_isolation'));
      if (level !== undefined && level.toUpperCase() !== 'READ-COMMITTED') {
        this.options.logger.warn(
          { isolation: level },
          'MySQL/MariaDB sessions are not at READ COMMITTED; expect deadlocks (create the knex with createDatabase())',
        );
      }
    } catch (err) {
      this.options.logger.debug({ err }, 'could not read the transaction isolation level');
    }
  }

  private describeConnection(): string {
    const conn = (this.knex.client as { config?: { connection?: unknown } }).config?.connection;
    if (typeof conn === 'string') return redactUrl(conn);
    if (conn && typeof conn === 'object') {
      const c = conn as {
        uri?: string;
        connectionString?: string;
        filename?: string;
        host?: string;
        port?: number;
      };
      const s = c.uri ?? c.connectionString ?? c.filename ?? (c.host ? `${c.host}:${c.port ?? ''}` : '');
      return redactUrl(s);
    }
    return '';
  }

  /** Stops the liveliness heartbeat, frees the node name (so a replacement can start at once), then closes. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      clearInterval(this.heartbeat);
      if (this.nameClaimed) {
        await nodes
          .releaseNodeName(this.ctx, this.incarnation)
          .catch((err: unknown) => this.options.logger.warn({ err }, 'could not free the node name'));
      }
      if (this.ownsKnex) await this.knex.destroy();
    })();
    return this.closed;
  }

  transaction<T>(fn: (trx: Knex.Transaction) => Promise<T>, operation = 'transaction'): Promise<T> {
    return this.ctx.tx(operation, undefined, (trx) => fn(trx));
  }

  script<T>(fn: (tx: TransactionScript) => Promise<T>, operation = 'transaction'): Promise<T> {
    return this.ctx.script(operation, fn);
  }

  // ---- Sessions -------------------------------------------------------------------------------------------------

  registerNewSession(session: SessionRegistrationInput, trx?: Knex.Transaction): Promise<number> {
    return sessions.registerNewSession(this.ctx, session, trx);
  }
  registerNewSessionWithinUserLimit(
    session: SessionRegistrationInput,
    maxSessionsPerUser: number,
  ): Promise<LimitedSessionRegistration> {
    return registerNewSessionWithinUserLimit(this.ctx, session, maxSessionsPerUser);
  }
  registerResumedSession(session: SessionRegistrationInput, trx?: Knex.Transaction): Promise<ResumedSession> {
    return sessions.registerResumedSession(this.ctx, session, trx);
  }
  registerResumedSessions(
    items: readonly SessionRegistrationInput[],
    maxSessionsPerUser: number,
    fetchOutbox?: number,
  ): Promise<ResumeOutcome[]> {
    return registerResumedSessions(this.ctx, items, maxSessionsPerUser, fetchOutbox);
  }
  getCurrentRegisteredNodeForSession(
    sessionId: string,
    trx?: Knex.Transaction,
  ): Promise<SessionRegistration | null> {
    return sessions.getCurrentRegisteredNodeForSession(this.ctx, sessionId, trx);
  }
  isSessionExists(sessionId: string, trx?: Knex.Transaction): Promise<boolean> {
    return sessions.isSessionExists(this.ctx, sessionId, trx);
  }
  getSessions(filter?: SessionFilter, trx?: Knex.Transaction): Promise<SessionInfo[]> {
    return sessions.getSessions(this.ctx, filter, trx);
  }
  getSessionsCount(filter?: SessionFilter, trx?: Knex.Transaction): Promise<number> {
    return sessions.getSessionsCount(this.ctx, filter, trx);
  }
  deregisterSessionFromThisNode(
    sessionId: string,
    connectionId: string,
    trx?: Knex.Transaction,
  ): Promise<boolean> {
    return sessions.deregisterSessionFromThisNode(this.ctx, sessionId, connectionId, trx);
  }
  deregisterAllSessionsOfThisNode(trx?: Knex.Transaction): Promise<number> {
    return sessions.deregisterAllSessionsOfThisNode(this.ctx, trx);
  }
  getSessionsRegisteredToThisNode(
    notLiveSinceTs: number,
    trx?: Knex.Transaction,
  ): Promise<SessionRegistration[]> {
    return sessions.getSessionsRegisteredToThisNode(this.ctx, notLiveSinceTs, trx);
  }
  closeSession(sessionId: string, trx?: Knex.Transaction): Promise<boolean> {
    return sessions.closeSession(this.ctx, sessionId, trx);
  }
  closeSessionOfConnection(
    sessionId: string,
    connectionId: string,
    trx?: Knex.Transaction,
  ): Promise<boolean> {
    return sessions.closeSessionOfConnection(this.ctx, sessionId, connectionId, trx);
  }
  notifySessionLiveliness(sessionIds: readonly string[], trx?: Knex.Transaction): Promise<void> {
    return sessions.notifySessionLiveliness(this.ctx, sessionIds, trx);
  }
  timeoutSessions(notLiveSinceTs: number, trx?: Knex.Transaction): Promise<string[]> {
    return cleanup.timeoutSessions(this.ctx, notLiveSinceTs, trx);
  }
  scavengeSessionRemnants(trx?: Knex.Transaction): Promise<number> {
    return cleanup.scavengeSessionRemnants(this.ctx, trx);
  }
  lockSessionForShare(sessionId: string, trx: Knex.Transaction): Promise<SessionState | null> {
    return this.ctx.read('lockSessionForShare', trx, () =>
      sessions.lockSessionForShare(this.ctx, trx, sessionId),
    );
  }

  lockSessionsForShare(
    sessionIds: readonly string[],
    trx: Knex.Transaction,
  ): Promise<Map<string, SessionState>> {
    return this.ctx.read('lockSessionsForShare', trx, () =>
      sessions.lockSessionsForShare(this.ctx, trx, sessionIds),
    );
  }

  // ---- Inbox ----------------------------------------------------------------------------------------------------

  storeMessageIdInInbox(sessionId: string, cmid: string, trx?: Knex.Transaction): Promise<void> {
    return inbox.storeMessageIdInInbox(this.ctx, sessionId, cmid, trx);
  }
  storeMessageIdsInInbox(
    items: readonly MessageRef[],
    trx?: Knex.Transaction,
    options?: BatchWriteOptions,
  ): Promise<InboxInsertOutcome[]> {
    return inbox.storeMessageIdsInInbox(this.ctx, items, trx, options);
  }
  updateMessageInInbox(
    sessionId: string,
    cmid: string,
    fullEnvelope: string,
    binary?: Uint8Array | null,
    trx?: Knex.Transaction,
  ): Promise<boolean> {
    return inbox.updateMessageInInbox(this.ctx, sessionId, cmid, fullEnvelope, binary, trx);
  }
  getMessageFromInbox(sessionId: string, cmid: string, trx?: Knex.Transaction): Promise<InboxEntry | null> {
    return inbox.getMessageFromInbox(this.ctx, sessionId, cmid, trx);
  }
  deleteMessageIdsFromInbox(
    sessionId: string,
    cmids: readonly string[],
    trx?: Knex.Transaction,
  ): Promise<number> {
    return inbox.deleteMessageIdsFromInboxBatch(this.ctx, [{ sessionId, ids: cmids }], trx);
  }
  deleteMessageIdsFromInboxBatch(entries: readonly SessionIds[], trx?: Knex.Transaction): Promise<number> {
    return inbox.deleteMessageIdsFromInboxBatch(this.ctx, entries, trx);
  }

  // ---- Outbox ---------------------------------------------------------------------------------------------------

  storeMessageInOutbox(message: OutboxMessageInput, trx?: Knex.Transaction): Promise<StoreInOutboxResult> {
    return outbox.storeMessageInOutbox(this.ctx, message, trx);
  }
  storeMessagesInOutbox(
    messages: readonly OutboxMessageInput[],
    trx?: Knex.Transaction,
    options?: BatchWriteOptions,
  ): Promise<StoreInOutboxBatchResult[]> {
    return outbox.storeMessagesInOutbox(this.ctx, messages, trx, options);
  }
  storeMessageIdsInInboxAtCommit(items: readonly MessageRef[], tx: TransactionScript): Promise<boolean> {
    return storeMessageIdsInInboxAtCommit(this.ctx, items, tx);
  }
  storeMessagesInOutboxAtCommit(
    messages: readonly OutboxMessageInput[],
    tx: TransactionScript,
  ): Promise<OutboxAtCommit | undefined> {
    return storeMessagesInOutboxAtCommit(this.ctx, messages, tx);
  }
  getMessagesFromOutbox(sessionId: string, max: number, trx?: Knex.Transaction): Promise<StoredOutMessage[]> {
    return outbox.getMessagesFromOutbox(this.ctx, sessionId, max, trx);
  }
  getMessagesFromOutboxBatch(
    sessionIds: readonly string[],
    maxPerSession: number,
    trx?: Knex.Transaction,
  ): Promise<Map<string, StoredOutMessage[]>> {
    return outbox.getMessagesFromOutboxBatch(this.ctx, sessionIds, maxPerSession, trx);
  }
  outboxMessagesAttemptedDelivery(
    sessionId: string,
    smids: readonly string[],
    trx?: Knex.Transaction,
  ): Promise<number> {
    return outbox.outboxMessagesAttemptedDelivery(this.ctx, sessionId, smids, trx);
  }
  outboxRowsAttemptedDelivery(rowIds: readonly number[], trx?: Knex.Transaction): Promise<number> {
    return outbox.outboxRowsAttemptedDelivery(this.ctx, rowIds, trx);
  }
  outboxMessagesUnmarkAttemptedDelivery(sessionId: string, trx?: Knex.Transaction): Promise<number> {
    return outbox.outboxMessagesUnmarkAttemptedDelivery(this.ctx, sessionId, trx);
  }
  outboxMessagesComplete(
    sessionId: string,
    smids: readonly string[],
    trx?: Knex.Transaction,
  ): Promise<number> {
    return outbox.outboxMessagesCompleteBatch(this.ctx, [{ sessionId, ids: smids }], trx);
  }
  outboxMessagesCompleteBatch(entries: readonly SessionIds[], trx?: Knex.Transaction): Promise<number> {
    return outbox.outboxMessagesCompleteBatch(this.ctx, entries, trx);
  }
  settleClientAcksBatch(
    completed: readonly SessionIds[],
    inboxDeleted: readonly SessionIds[],
  ): Promise<void> {
    return settleClientAcksBatch(this.ctx, completed, inboxDeleted);
  }
  outboxMessagesDeadLetter(
    sessionId: string,
    smids: readonly string[],
    reason: DeadLetterReason,
    description?: string | null,
    trx?: Knex.Transaction,
  ): Promise<string[]> {
    return deadLetters.outboxMessagesDeadLetter(this.ctx, sessionId, smids, reason, description, trx);
  }
  hasPendingOutbox(
    sessionIds: readonly string[],
    olderThanTs: number,
    trx?: Knex.Transaction,
  ): Promise<string[]> {
    return outbox.hasPendingOutbox(this.ctx, sessionIds, olderThanTs, trx);
  }
  getOutboxDepths(sessionIds: readonly string[], trx?: Knex.Transaction): Promise<Map<string, number>> {
    return outbox.getOutboxDepths(this.ctx, sessionIds, trx);
  }

  // ---- Dead letters ---------------------------------------------------------------------------------------------

  listDeadLetters(filter?: DeadLetterFilter, trx?: Knex.Transaction): Promise<DeadLetterSummary[]> {
    return deadLetters.listDeadLetters(this.ctx, filter, trx);
  }
  countDeadLetters(filter?: DeadLetterFilter, trx?: Knex.Transaction): Promise<number> {
    return deadLetters.countDeadLetters(this.ctx, filter, trx);
  }
  getDeadLetter(id: number, trx?: Knex.Transaction): Promise<DeadLetter | null> {
    return deadLetters.getDeadLetter(this.ctx, id, trx);
  }
  requeueDeadLetter(id: number, trx?: Knex.Transaction): Promise<RequeueResult> {
    return deadLetters.requeueDeadLetter(this.ctx, id, trx);
  }
  purgeDeadLetters(purge: DeadLetterPurge, trx?: Knex.Transaction): Promise<number> {
    return deadLetters.purgeDeadLetters(this.ctx, purge, trx);
  }

  // ---- Request correlations -------------------------------------------------------------------------------------

  storeRequestCorrelation(correlation: RequestCorrelationInput, trx?: Knex.Transaction): Promise<boolean> {
    return correlations.storeRequestCorrelation(this.ctx, correlation, trx);
  }
  getAndDeleteRequestCorrelation(
    sessionId: string,
    smid: string,
    trx?: Knex.Transaction,
  ): Promise<RequestCorrelation | null> {
    return correlations.getAndDeleteRequestCorrelation(this.ctx, sessionId, smid, trx);
  }
  getExpiredRequestCorrelations(
    nowTs: number,
    limit: number,
    trx?: Knex.Transaction,
  ): Promise<ExpiredCorrelation[]> {
    return correlations.getExpiredRequestCorrelations(this.ctx, nowTs, limit, trx);
  }

  // ---- Topic replay log -----------------------------------------------------------------------------------------

  appendTopicMessage(message: TopicMessageInput, trx?: Knex.Transaction): Promise<TopicAppendResult> {
    return topics.appendTopicMessage(this.ctx, message, trx);
  }
  getTopicReplay(
    topicId: string,
    afterSeq: number,
    limit: number,
    trx?: Knex.Transaction,
  ): Promise<TopicReplay | null> {
    return topics.getTopicReplay(this.ctx, topicId, afterSeq, limit, trx);
  }
  purgeTopicLog(olderThanTs: number, trx?: Knex.Transaction): Promise<TopicPurgeResult> {
    return topics.purgeTopicLog(this.ctx, olderThanTs, trx);
  }
}
