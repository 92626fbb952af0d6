import type { Knex } from 'knex';
import { TransactionScript } from '../store/TransactionScript.ts';
import type { OutgoingMessage, Transport } from '../broker/Transport.ts';
import type { Logger } from '../logging.ts';
import type { MatsMessageStore, StoredOutgoingMessage } from '../store/MatsMessageStore.ts';
import { FailureStreak } from '../util/FailureStreak.ts';
import type { Clock } from './MatsFactoryOptions.ts';
import type { MatsInstruments } from './MatsInstruments.ts';
import { randomChars } from './matsIds.ts';
import { OutboxRowSettler, withRemainingTtl } from './OutboxRowSettler.ts';

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
  transport: Pick<Transport, 'state'>;
  /** Publishes with confirms (the runtime's publish, with its nack retry). */
  publish(messages: readonly OutgoingMessage[]): Promise<void>;
  logger: Logger;
  instruments: MatsInstruments;
  clock: Clock;
  appName: string;
  appVersion: string;
  nodeName: string;
  /** How long a sweeper's lease on the rows it publishes lasts (ms). */
  leaseMs: number;
  /** Failed publishes caused by a row itself before it is dead-lettered. */
  maxAttempts: number;
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
 * - the sweeper: every `sweepIntervalMs`, one short transaction leases rows older than `sweepMinAgeMs` (`FOR
 *   UPDATE SKIP LOCKED`) and commits; then each row is published on its own and settled by its own outcome
 *   (deleted, released for a later sweep, or dead-lettered after `maxAttempts`; {@link OutboxRowSettler}). No
 *   transaction spans a broker wait; a row whose lease passed (a node died mid-publish) is taken again;
 * - the periodic inbox purge.
 */
export class OutboxPublisher {
  readonly #o: OutboxPublisherOptions;
  readonly #pendingDeletes = new Set<string>();
  #deleteScheduled = false;
  readonly #inFlight = new Set<Promise<unknown>>();
  /** Rows of initiations joined to a caller's outermost transaction, by that transaction, until it settles. */
  readonly #callerGroups = new Map<Knex.Transaction | TransactionScript, CallerGroup>();
  #sweepTimer: NodeJS.Timeout | undefined;
  /** During a database outage every sweep fails: one warning per streak (and per minute), not per sweep. */
  readonly #sweepFailures: FailureStreak;
  #deleteTimer: NodeJS.Timeout | undefined;
  #purgeTimer: NodeJS.Timeout | undefined;
  #running = false;
  #sweeping: Promise<number> | undefined;
  /** This publisher's lease owner id: node name plus a random part (a restarted node is another owner). */
  readonly #owner: string;
  readonly #settler: OutboxRowSettler;

  constructor(options: OutboxPublisherOptions) {
    this.#o = options;
    this.#sweepFailures = new FailureStreak(options.logger, 'Mats outbox sweep');
    this.#owner = `${options.nodeName.slice(0, 200)}#${randomChars(8)}`;
    this.#settler = new OutboxRowSettler({
      store: options.store,
      transport: options.transport,
      publish: (messages) => options.publish(messages),
      logger: options.logger,
      instruments: options.instruments,
      now: () => options.clock.now(),
      owner: this.#owner,
      maxAttempts: options.maxAttempts,
      appName: options.appName,
      appVersion: options.appVersion,
      nodeName: options.nodeName,
    });
  }

  /** Starts the sweeper and the inbox purge. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#scheduleSweep();
    this.#schedulePurge(true);
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
   * transaction, if `trx` is a savepoint; a `TransactionScript`'s `settled`) has settled. All initiations joined to the same outermost transaction
   * are handled together: one read of which rows exist first unless the commit is certain (only committed rows
   * do; rows of a rolled-back transaction or savepoint are skipped; see {@link OutboxPublisher.#publishCommitted}),
   * then each row is published from memory on its own (so one refused row fails none of the others), and one
   * batched delete. Rows whose publish fails, or all if the process dies first, stay for the sweeper.
   */
  afterCallerCommit(trx: Knex.Transaction | TransactionScript, rows: readonly CommittedRow[]): void {
    if (trx instanceof TransactionScript) {
      if (trx.joined) return this.afterCallerCommit(trx.joined, rows);
      // A script is never a savepoint, and `settled` tells a commit from a rollback for certain.
      this.#joinGroup(trx, rows, false, () => trx.settled);
      return;
    }
    let root = trx as Knex.Transaction & { parentTransaction?: Knex.Transaction };
    while (root.parentTransaction) root = root.parentTransaction as typeof root;
    if (!(root.executionPromise instanceof Promise)) {
      this.#o.logger.warn(
        { matsMessageIds: rows.map((r) => r.matsMessageId) },
        'Mats outbox: caller transaction has no executionPromise; the sweeper will send',
      );
      return;
    }
    // knex resolves executionPromise with the handler's value on commit, with `undefined` on an explicit
    // rollback (doNotRejectOnRollback), and rejects on a failed one.
    const executed = root.executionPromise;
    this.#joinGroup(root, rows, trx !== root, () =>
      executed.then(
        (value: unknown) => (value === undefined ? 'maybe' : 'committed'),
        () => 'rolled back' as const,
      ),
    );
  }

  /** Adds `rows` to the group of the caller transaction `root`; a new group is published once `outcome` settles. */
  #joinGroup(
    root: Knex.Transaction | TransactionScript,
    rows: readonly CommittedRow[],
    viaSavepoint: boolean,
    outcome: () => Promise<'committed' | 'rolled back' | 'maybe'>,
  ): void {
    const joined = this.#callerGroups.get(root);
    if (joined) {
      for (const r of rows) joined.rows.push(r);
      joined.viaSavepoint ||= viaSavepoint;
      return;
    }
    const group: CallerGroup = { rows: [...rows], viaSavepoint, since: this.#o.clock.now() };
    this.#callerGroups.set(root, group);
    this.#track(
      outcome().then((outcome) => {
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
    const confirmed = await this.publishStored(present);
    // Confirmed (or expired, like the sweeper drops them): delete in the next batched statement. The rest stay
    // for the sweeper, which settles each by its own outcome.
    this.scheduleDelete(confirmed);
    return confirmed.length;
  }

  /** Leases, publishes and settles the given rows if they still exist. Returns how many were published. */
  async flushIds(matsMessageIds: readonly string[]): Promise<number> {
    if (matsMessageIds.length === 0) return 0;
    const rows = await this.#o.store.leaseOutbox({ ids: matsMessageIds }, this.#owner, this.#o.leaseMs);
    return rows.length === 0 ? 0 : this.#settler.settle(rows);
  }

  /** One sweep: leases up to a batch of old rows, publishes and settles them. Returns how many were published. */
  sweepOnce(): Promise<number> {
    this.#sweeping ??= this.#sweep().finally(() => (this.#sweeping = undefined));
    return this.#sweeping;
  }

  async #sweep(): Promise<number> {
    // Leasing rows only to release them again would churn the database all through a broker outage.
    if (this.#o.transport.state !== 'connected') return 0;
    // Ages and leases by the database's clock: another node's rows and leases are judged by the same clock.
    const rows = await this.#o.store.leaseOutbox(
      { minAgeMs: this.#o.sweepMinAgeMs, limit: this.#o.sweepBatchSize },
      this.#owner,
      this.#o.leaseMs,
    );
    if (rows.length === 0) return 0;
    const published = await this.#settler.settle(rows);
    if (published > 0) this.#o.logger.debug({ published }, 'Mats outbox rows published');
    // Only published rows count towards "a full batch: sweep again at once": released rows wait for the next
    // interval, so a row's attempts are spread over time, not spent in one burst.
    return published;
  }

  /**
   * Publishes stored rows, each on its own (dropping those whose `mats_Expires` passed; the rest get their
   * remaining TTL). Never rejects: returns the ids of the rows that are done (confirmed or expired); the others
   * stay for the sweeper.
   */
  async publishStored(
    rows: ReadonlyArray<Pick<StoredOutgoingMessage, 'matsMessageId' | 'message'>>,
  ): Promise<string[]> {
    const now = this.#o.clock.now();
    const done: string[] = [];
    let firstError: unknown;
    const publishes: Array<Promise<unknown>> = [];
    for (const row of rows) {
      const message = withRemainingTtl(row.message, now);
      if (!message) done.push(row.matsMessageId);
      else {
        publishes.push(
          this.#o.publish([message]).then(
            () => done.push(row.matsMessageId),
            (error: unknown) => (firstError ??= error),
          ),
        );
      }
    }
    await Promise.all(publishes);
    if (firstError !== undefined) {
      this.#o.logger.warn(
        { err: firstError, failed: rows.length - done.length },
        'Mats outbox: publish failed; the sweeper will send the rest',
      );
    }
    return done;
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

  #schedulePurge(first = false): void {
    if (!this.#running) return;
    const interval = this.#o.inboxPurgeIntervalMs;
    // The first purge after a random part of the interval: nodes started together do not purge together.
    const delay = first ? Math.round(Math.random() * interval) : interval;
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
    }, delay);
  }
}
