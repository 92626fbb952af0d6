import type { Knex } from 'knex';
import type { OutgoingMessage } from '../broker/Transport.ts';
import type { Logger } from '../logging.ts';
import type { MatsMessageStore, StoredOutgoingMessage } from '../store/MatsMessageStore.ts';
import type { Clock } from './MatsFactoryOptions.ts';
import { FailureStreak } from '../util/FailureStreak.ts';
import { MatsHeader } from './MatsWire.ts';

/** An outbox row written in a caller's transaction, with its message kept in memory for publishing. */
export interface CommittedRow {
  readonly matsMessageId: string;
  readonly message: OutgoingMessage;
}

/** The rows joined to one outermost caller transaction, until it settles. */
interface CallerGroup {
  rows: CommittedRow[];
  /** Some joined through a savepoint, which can roll back while the outer transaction commits. */
  viaSavepoint: boolean;
  /** When the first row joined (clock ms): about when the rows were inserted. */
  since: number;
}

export interface OutboxPublisherOptions {
  store: MatsMessageStore;
  /** Publishes with confirms (the runtime's publish, with its nack retry). */
  publish(messages: readonly OutgoingMessage[]): Promise<void>;
  logger: Logger;
  clock: Clock;
  sweepIntervalMs: number;
  sweepMinAgeMs: number;
  sweepBatchSize: number;
  /** Deletes of published rows gather this long (ms; 0: the same event-loop turn). */
  deleteWindowMs: number;
  inboxRetentionMs: number;
  inboxPurgeIntervalMs: number;
}

/**
 * Everything that publishes from `mats_outbox` (`docs/mats-semantics.md` 2.3):
 * - the lazy, batched delete of rows whose publish a stage or initiation saw confirmed;
 * - publish-after-commit for initiations that joined a caller-supplied transaction: when the caller's outermost
 *   transaction has committed, its rows (those still present, when the commit is not certain) are published
 *   from memory and then deleted, all initiations of that transaction together;
 * - the sweeper: every `sweepIntervalMs`, one transaction claims rows older than `sweepMinAgeMs` with
 *   `FOR UPDATE SKIP LOCKED`, deletes them, publishes them with confirms and commits (a failed publish rolls the
 *   delete back);
 * - the periodic inbox purge.
 */
export class OutboxPublisher {
  readonly #o: OutboxPublisherOptions;
  readonly #pendingDeletes = new Set<string>();
  #deleteScheduled = false;
  readonly #inFlight = new Set<Promise<unknown>>();
  /** Rows of initiations joined to a caller's outermost transaction, by that transaction, until it settles. */
  readonly #callerGroups = new Map<Knex.Transaction, CallerGroup>();
  #sweepTimer: NodeJS.Timeout | undefined;
  /** During a database outage every sweep fails: one warning per streak (and per minute), not per sweep. */
  readonly #sweepFailures: FailureStreak;
  #deleteTimer: NodeJS.Timeout | undefined;
  #purgeTimer: NodeJS.Timeout | undefined;
  #running = false;
  #sweeping: Promise<number> | undefined;

  constructor(options: OutboxPublisherOptions) {
    this.#o = options;
    this.#sweepFailures = new FailureStreak(options.logger, 'Mats outbox sweep');
  }

  /** Starts the sweeper and the inbox purge. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#scheduleSweep();
    this.#schedulePurge();
  }

  /**
   * Stops the timers and waits (at most `graceMs`) for running sweeps, flushes and deletes. Idempotent. Work
   * still pending after the grace period (e.g. a caller transaction that never ends) is left to the sweeper of
   * a later run: the rows stay in the table.
   */
  async stop(graceMs = 5000): Promise<void> {
    this.#running = false;
    clearTimeout(this.#sweepTimer);
    clearTimeout(this.#purgeTimer);
    this.#flushDeletes();
    const deadline = Date.now() + graceMs;
    while (this.#inFlight.size > 0 && Date.now() < deadline) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise((resolve) => (timer = setTimeout(resolve, deadline - Date.now())));
      await Promise.race([Promise.allSettled([...this.#inFlight]), timeout]);
      clearTimeout(timer);
    }
  }

  /** Deletes these rows soon, in one statement with others (their publish was confirmed). */
  scheduleDelete(matsMessageIds: readonly string[]): void {
    for (const id of matsMessageIds) this.#pendingDeletes.add(id);
    if (this.#deleteScheduled) return;
    this.#deleteScheduled = true;
    // Never so long that the sweeper could take the rows again (it takes those older than sweepMinAgeMs).
    const windowMs = Math.min(this.#o.deleteWindowMs, this.#o.sweepMinAgeMs / 4);
    if (windowMs > 0) this.#deleteTimer = setTimeout(() => this.#flushDeletes(), windowMs);
    else setImmediate(() => this.#flushDeletes());
  }

  /**
   * Publishes `rows` (just inserted into the outbox in `trx`) once the caller's transaction `trx` (its outermost
   * transaction, if `trx` is a savepoint) has settled. All initiations joined to the same outermost transaction
   * are published together: one publish from memory, one batched delete, and, unless the commit is certain,
   * one read of which rows exist first (only committed rows do; rows of a rolled-back transaction or savepoint
   * are skipped; see {@link OutboxPublisher.#publishCommitted}). If the publish fails, or the process dies first,
   * the rows stay for the sweeper.
   */
  afterCallerCommit(trx: Knex.Transaction, rows: readonly CommittedRow[]): void {
    let root = trx as Knex.Transaction & { parentTransaction?: Knex.Transaction };
    while (root.parentTransaction) root = root.parentTransaction as typeof root;
    if (!(root.executionPromise instanceof Promise)) {
      this.#o.logger.warn(
        { matsMessageIds: rows.map((r) => r.matsMessageId) },
        'Mats outbox: caller transaction has no executionPromise; the sweeper will send',
      );
      return;
    }
    const joined = this.#callerGroups.get(root);
    if (joined) {
      for (const r of rows) joined.rows.push(r);
      joined.viaSavepoint ||= trx !== root;
      return;
    }
    const group: CallerGroup = { rows: [...rows], viaSavepoint: trx !== root, since: this.#o.clock.now() };
    this.#callerGroups.set(root, group);
    // knex resolves executionPromise with the handler's value on commit, with `undefined` on an explicit
    // rollback (doNotRejectOnRollback), and rejects on a failed one.
    const settled = root.executionPromise.then(
      (value: unknown) => (value === undefined ? 'maybe' : 'committed'),
      () => 'rolled back' as const,
    );
    this.#track(
      settled.then((outcome) => {
        this.#callerGroups.delete(root);
        return outcome === 'rolled back' ? 0 : this.#publishCommitted(group, outcome === 'committed');
      }),
      'publish after caller commit',
    );
  }

  /**
   * Publishes a settled caller group. Rows that are certainly committed (the outermost transaction returned a
   * value, and none joined through a savepoint that might have rolled back on its own) and young enough that
   * the sweeper cannot be sending them yet (it only takes rows older than `sweepMinAgeMs`) go straight to the
   * broker; otherwise which rows exist is read first, with row locks (`FOR UPDATE SKIP LOCKED`) once the group
   * is old enough for the sweeper to race it, so a row is never sent by both.
   */
  async #publishCommitted(group: CallerGroup, committed: boolean): Promise<number> {
    const rows = group.rows;
    const age = this.#o.clock.now() - group.since;
    if (age >= this.#o.sweepMinAgeMs / 2) return this.flushIds(rows.map((r) => r.matsMessageId));
    let present: readonly CommittedRow[] = rows;
    if (!committed || group.viaSavepoint) {
      const store = this.#o.store;
      const ids = await store.existingOutboxIds(
        store.db,
        rows.map((r) => r.matsMessageId),
      );
      present = ids.size === rows.length ? rows : rows.filter((r) => ids.has(r.matsMessageId));
    }
    if (present.length === 0) return 0;
    const published = await this.publishStored(present);
    // Confirmed (or expired, like the sweeper drops them): delete in the next batched statement.
    this.scheduleDelete(present.map((r) => r.matsMessageId));
    return published;
  }

  /** Claims, publishes and deletes the given rows if they still exist. Returns how many were published. */
  async flushIds(matsMessageIds: readonly string[]): Promise<number> {
    if (matsMessageIds.length === 0) return 0;
    return this.#inClaim((trx) => this.#o.store.claimOutboxByIds(trx, matsMessageIds));
  }

  /** One sweep: claims up to a batch of old rows, publishes and deletes them. Returns how many were published. */
  sweepOnce(): Promise<number> {
    this.#sweeping ??= this.#inClaim((trx) =>
      this.#o.store.claimOutboxBatch(
        trx,
        this.#o.clock.now() - this.#o.sweepMinAgeMs,
        this.#o.sweepBatchSize,
      ),
    ).finally(() => (this.#sweeping = undefined));
    return this.#sweeping;
  }

  /**
   * Publishes stored rows (dropping those whose `mats_Expires` passed; the rest get their remaining TTL). Resolves
   * when all are confirmed; rejects like `Transport.publish`.
   */
  async publishStored(rows: ReadonlyArray<Pick<StoredOutgoingMessage, 'message'>>): Promise<number> {
    const now = this.#o.clock.now();
    const messages: OutgoingMessage[] = [];
    for (const row of rows) {
      const expires = row.message.properties.headers[MatsHeader.EXPIRES];
      if (typeof expires === 'number') {
        if (expires <= now) continue;
        messages.push({
          ...row.message,
          properties: { ...row.message.properties, expiration: expires - now },
        });
      } else messages.push(row.message);
    }
    if (messages.length > 0) await this.#o.publish(messages);
    return messages.length;
  }

  async #inClaim(claim: (trx: Knex.Transaction) => Promise<StoredOutgoingMessage[]>): Promise<number> {
    const trx = await this.#o.store.db.transaction();
    try {
      const rows = await claim(trx);
      if (rows.length === 0) {
        await trx.commit();
        return 0;
      }
      // Delete before publishing, while holding the row locks: if the delete fails (e.g. a MariaDB deadlock
      // between two sweepers) nothing was published yet. Fewer deleted rows than claimed means another node took
      // some (SQLite has no row locks): publish nothing, roll back.
      const deleted = await this.#o.store.deleteOutbox(
        trx,
        rows.map((r) => r.matsMessageId),
      );
      if (deleted !== rows.length) {
        await trx.rollback();
        return 0;
      }
      const published = await this.publishStored(rows);
      await trx.commit();
      if (published > 0) this.#o.logger.debug({ published }, 'Mats outbox rows published');
      return published;
    } catch (err) {
      if (!trx.isCompleted()) await trx.rollback().catch(() => undefined);
      throw err;
    }
  }

  #flushDeletes(): void {
    clearTimeout(this.#deleteTimer);
    this.#deleteTimer = undefined;
    this.#deleteScheduled = false;
    if (this.#pendingDeletes.size === 0) return;
    const ids = [...this.#pendingDeletes];
    this.#pendingDeletes.clear();
    this.#track(this.#o.store.deleteOutbox(this.#o.store.db, ids), 'delete published outbox rows');
  }

  #track(promise: Promise<unknown>, what: string): void {
    const p = promise.catch((error: unknown) => {
      // The rows stay; the sweeper publishes (or deletes) them later.
      this.#o.logger.warn({ err: error }, `Mats outbox: ${what} failed`);
    });
    this.#inFlight.add(p);
    void p.finally(() => this.#inFlight.delete(p));
  }

  #scheduleSweep(): void {
    if (!this.#running) return;
    this.#sweepTimer = setTimeout(() => {
      const p = this.sweepOnce()
        .then((n) => {
          // A full batch means more are waiting: sweep again at once.
          if (n >= this.#o.sweepBatchSize && this.#running) return this.sweepOnce();
          return n;
        })
        .then(
          () => this.#sweepFailures.succeeded(),
          (error: unknown) => this.#sweepFailures.failed(error),
        )
        .finally(() => {
          this.#inFlight.delete(p);
          this.#scheduleSweep();
        });
      this.#inFlight.add(p);
    }, this.#o.sweepIntervalMs);
  }

  #schedulePurge(): void {
    if (!this.#running) return;
    this.#purgeTimer = setTimeout(() => {
      const p = this.#o.store
        .purgeInbox(this.#o.clock.now() - this.#o.inboxRetentionMs)
        .then((n) => {
          if (n > 0) this.#o.logger.debug({ purged: n }, 'Mats inbox purged');
        })
        .catch((error: unknown) => this.#o.logger.warn({ err: error }, 'Mats inbox purge failed'))
        .finally(() => {
          this.#inFlight.delete(p);
          this.#schedulePurge();
        });
      this.#inFlight.add(p);
    }, this.#o.inboxPurgeIntervalMs);
  }
}
