import type { Knex } from 'knex';
import { MATS_MIGRATIONS_TABLE, matsMigrations } from '../../migrations/mats/index.ts';
import type { HeaderValue, MessageProperties, OutgoingMessage } from '../broker/Transport.ts';
import { chunk } from '../util/chunk.ts';
import { dialectOf, type Dialect } from './database.ts';
import { writeBehind } from './mysqlStatementFolding.ts';
import { isUniqueViolation, toDataAccessError } from './sqlErrors.ts';
import { insertRows } from './sqlText.ts';
import { TransactionScript } from './TransactionScript.ts';

/** An outgoing message stored in `mats_outbox`, as read back for publishing. */
export interface StoredOutgoingMessage {
  /** Auto-increment row id (sweeper order). */
  id: number;
  matsMessageId: string;
  causeMessageId: string | null;
  createdTimestamp: number;
  message: OutgoingMessage;
}

/** An outbox row leased to a sweeper, with the number of earlier failed publishes that were the row's fault. */
export interface LeasedOutgoingMessage extends StoredOutgoingMessage {
  attempts: number;
  /** How old the row was when leased, ms, by the database's clock (both ends): no node's clock is involved. */
  ageMs: number;
  /** Why the stored properties or headers could not be read (the row can never be published as stored). */
  unreadable?: string;
}

/** `claimed_by` of a parked row (see {@link MatsMessageStore.parkOutbox}). */
export const PARKED_OWNER = '!parked';

type Db = Knex | Knex.Transaction;

/**
 * The database server's clock in epoch ms. Outbox ages and leases are compared across nodes, so they are taken from
 * the one clock every node shares, not from each node's own: a node whose clock runs ahead would otherwise take
 * rows the writer is still publishing, or leases another sweeper still holds (both: publishes twice). MariaDB's
 * `@@timestamp` is the statement's start in UTC seconds with microseconds (no time-zone conversion, unlike
 * UNIX_TIMESTAMP(NOW()) in a DST zone); SQLite's file is on one host anyway.
 */
const DB_NOW_MS: Record<Dialect, string> = {
  mysql: 'ROUND(@@timestamp * 1000)',
  postgres: 'FLOOR(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)',
  sqlite: "CAST(ROUND((julianday('now') - 2440587.5) * 86400000) AS INTEGER)",
};

/** Thrown inside the lease transaction to roll it back when another node leased some of the rows first. */
class LeaseLost extends Error {}

interface OutboxRecord {
  id: number | string;
  mats_message_id: string;
  cause_message_id: string | null;
  target_kind: string;
  target_name: string;
  properties: string;
  headers: string;
  body: Buffer | Uint8Array;
  created_timestamp: number | string;
  attempts?: number | string;
}

/**
 * The SQL of the Mats layer (the only place with it): `mats_inbox` (de-duplication by matsMessageId per stage)
 * and `mats_outbox` (the transactional outbox), `docs/mats-semantics.md` 2.3. Every failure becomes a
 * `DataAccessError` with the driver's error as `cause`.
 */
export class MatsMessageStore {
  readonly db: Knex;
  readonly dialect: Dialect;

  constructor(db: Knex) {
    this.db = db;
    this.dialect = dialectOf(db);
  }

  /** Brings the Mats tables to the latest migration (own migration table `knex_migrations_mats`). */
  static async migrate(db: Knex): Promise<void> {
    try {
      await db.migrate.latest({ migrationSource: matsMigrations, tableName: MATS_MIGRATIONS_TABLE });
    } catch (err) {
      throw toDataAccessError(err, 'Mats migration');
    }
  }

  /**
   * Records `(stageId, matsMessageId)` in the inbox inside a savepoint of `trx`. Returns false when it is already
   * there (a duplicate delivery): only the savepoint is rolled back, `trx` stays usable.
   */
  async insertInbox(
    trx: Knex.Transaction,
    stageId: string,
    matsMessageId: string,
    now: number,
  ): Promise<boolean> {
    try {
      await trx.transaction(async (sp) => {
        await sp('mats_inbox').insert({
          stage_id: stageId,
          mats_message_id: matsMessageId,
          received_timestamp: now,
        });
      });
      return true;
    } catch (err) {
      if (isUniqueViolation(err)) return false;
      throw toDataAccessError(err, 'Mats inbox insert');
    }
  }

  /**
   * Records many received messages of one stage in the inbox inside `trx`, in ONE multi-row INSERT in the common
   * case (one savepoint per message costs three statements each on a hot path). Only if that INSERT hits a unique
   * violation (a redelivery) are they inserted one by one with {@link insertInbox} to tell which are duplicates.
   * A failed statement leaves `trx` usable: MySQL/MariaDB and SQLite roll back just that statement; on
   * PostgreSQL the INSERT runs in a savepoint.
   *
   * `optimistic`: in a {@link TransactionScript} on MySQL/MariaDB or SQLite the INSERT is a write of the script (with
   * a knex transaction on MySQL/MariaDB it travels with the next statement), and every id is reported recorded; a
   * duplicate then fails the transaction. For a group commit that commits its items again, not optimistic, when its
   * transaction fails.
   *
   * @returns per id, in order: true if recorded now, false if it was already there.
   */
  async insertInboxBatch(
    tx: Knex.Transaction | TransactionScript,
    stageId: string,
    matsMessageIds: readonly string[],
    now: number,
    optimistic = false,
  ): Promise<boolean[]> {
    if (matsMessageIds.length === 0) return [];
    const unique = new Set(matsMessageIds).size === matsMessageIds.length;
    const rows = matsMessageIds.map((id) => ({
      stage_id: stageId,
      mats_message_id: id,
      received_timestamp: now,
    }));
    const parts = chunk(rows, 500);
    if (unique && optimistic && parts.length === 1) {
      if (tx instanceof TransactionScript && this.dialect !== 'postgres') {
        await tx.write(insertRows(this.dialect, 'mats_inbox', parts[0]!));
        return matsMessageIds.map(() => true);
      }
      if (!(tx instanceof TransactionScript) && this.dialect === 'mysql') {
        await writeBehind(tx('mats_inbox').insert(parts[0]!));
        return matsMessageIds.map(() => true);
      }
    }
    const trx = tx instanceof TransactionScript ? await tx.knex() : tx;
    if (unique) {
      try {
        // Several statements (or PostgreSQL, where any failed statement aborts the transaction) need a savepoint,
        // so a duplicate in a later chunk also undoes the earlier ones before the one-by-one fallback.
        if (parts.length === 1 && this.dialect !== 'postgres') await trx('mats_inbox').insert(parts[0]!);
        else
          await trx.transaction(async (sp) => {
            for (const part of parts) await sp('mats_inbox').insert(part);
          });
        return matsMessageIds.map(() => true);
      } catch (err) {
        if (!isUniqueViolation(err)) throw toDataAccessError(err, 'Mats inbox batch insert');
      }
    }
    const results: boolean[] = [];
    for (const id of matsMessageIds) results.push(await this.insertInbox(trx, stageId, id, now));
    return results;
  }

  /**
   * Deletes inbox rows received before `olderThan` (epoch ms), at most `batchSize` per statement (keys read through
   * the timestamp index, then deleted by primary key), each batch its own short transaction, yielding between
   * batches: one unbatched DELETE of an hour's rows locked the table and stalled the stages' inbox inserts.
   * Returns how many were deleted.
   */
  async purgeInbox(olderThan: number, batchSize = 1000): Promise<number> {
    let total = 0;
    try {
      for (;;) {
        const keys = (await this.db('mats_inbox')
          .select('stage_id', 'mats_message_id')
          .where('received_timestamp', '<', olderThan)
          .orderBy('received_timestamp')
          .limit(batchSize)) as { stage_id: string; mats_message_id: string }[];
        if (keys.length === 0) return total;
        total += await this.db('mats_inbox')
          .whereIn(
            ['stage_id', 'mats_message_id'],
            keys.map((k) => [k.stage_id, k.mats_message_id]),
          )
          .delete();
        if (keys.length < batchSize) return total;
        await new Promise((resolve) => setImmediate(resolve));
      }
    } catch (err) {
      throw toDataAccessError(err, 'Mats inbox purge');
    }
  }

  /**
   * Inserts outgoing messages into the outbox in `trx`, created at the database's clock (`createdAt`, epoch ms, only
   * for tests that need rows of a given age).
   */
  async insertOutbox(
    trx: Db | TransactionScript,
    messages: ReadonlyArray<{
      message: OutgoingMessage;
      matsMessageId: string;
      causeMessageId: string | undefined;
    }>,
    createdAt?: number,
  ): Promise<void> {
    if (messages.length === 0) return;
    const script = trx instanceof TransactionScript;
    const now =
      createdAt ??
      (script ? { sqlExpression: DB_NOW_MS[this.dialect] } : this.db.raw(DB_NOW_MS[this.dialect]));
    const rows = messages.map(({ message, matsMessageId, causeMessageId }) => {
      const { headers, ...properties } = message.properties;
      return {
        mats_message_id: matsMessageId,
        cause_message_id: causeMessageId ?? null,
        target_kind: message.target.kind,
        target_name: message.target.name,
        properties: JSON.stringify(properties),
        headers: JSON.stringify(headers),
        body: message.body,
        created_timestamp: now,
      };
    });
    try {
      // Large bodies in one multi-row INSERT could exceed max_allowed_packet; a few rows per statement is enough.
      // Nobody reads the result, and a failure fails the transaction anyway: on MySQL it goes with the next
      // statement, usually the COMMIT (docs/store.md §6).
      for (const part of chunk(rows, 20)) {
        if (trx instanceof TransactionScript) {
          await trx.write(insertRows(this.dialect, 'mats_outbox', part));
          continue;
        }
        const insert = trx('mats_outbox').insert(part as Record<string, Knex.RawBinding | Knex.Raw>[]);
        await (this.dialect === 'mysql' ? writeBehind(insert) : insert);
      }
    } catch (err) {
      throw toDataAccessError(err, 'Mats outbox insert');
    }
  }

  /** The outbox rows produced by the incoming message `causeMessageId` (for an inbox duplicate), in id order. */
  async outboxByCause(trx: Db, causeMessageId: string): Promise<StoredOutgoingMessage[]> {
    try {
      const rows = (await trx('mats_outbox')
        .where('cause_message_id', causeMessageId)
        .orderBy('id')) as OutboxRecord[];
      return rows.map(toStored);
    } catch (err) {
      throw toDataAccessError(err, 'Mats outbox read');
    }
  }

  /**
   * Leases outbox rows to `owner` for `leaseMs` in one short transaction of its own, which is committed before
   * anything is published: no transaction (and on SQLite, not the only connection) is held while waiting for the
   * broker. Takes rows that are not leased or whose lease has passed, skipping rows another sweeper is leasing at
   * this moment (`FOR UPDATE SKIP LOCKED`; SQLite has one writer). Either the rows with the given message ids, or up
   * to `limit` rows at least `minAgeMs` old, oldest id first. Ages and leases are judged by the database's clock
   * (`now`, epoch ms, only for tests that set the time).
   */
  async leaseOutbox(
    select: { ids: readonly string[] } | { minAgeMs: number; limit: number },
    owner: string,
    leaseMs: number,
    now?: number,
  ): Promise<LeasedOutgoingMessage[]> {
    try {
      return await this.db.transaction(async (trx) => {
        const t = now ?? (await this.#dbNow(trx));
        const free = (q: Knex.QueryBuilder): Knex.QueryBuilder =>
          q.where((w) => {
            void w.whereNull('claimed_until').orWhere('claimed_until', '<=', t);
          });
        const out: LeasedOutgoingMessage[] = [];
        const parts = 'ids' in select ? chunk(select.ids, 500) : [undefined];
        for (const ids of parts) {
          const base = free(trx('mats_outbox')).orderBy('id');
          const query =
            ids !== undefined
              ? base.whereIn('mats_message_id', ids)
              : base.where('created_timestamp', '<=', t - (select as { minAgeMs: number }).minAgeMs);
          if (ids === undefined) void query.limit((select as { limit: number }).limit);
          const rows = (await this.#lock(query)) as OutboxRecord[];
          if (rows.length === 0) continue;
          const leased = await free(trx('mats_outbox'))
            .whereIn(
              'id',
              rows.map((r) => r.id),
            )
            .update({ claimed_by: owner, claimed_until: t + leaseMs });
          // Fewer than read: another node on the same SQLite file leased some in between; take none of these.
          if (leased !== rows.length) throw new LeaseLost();
          out.push(...rows.map((r) => toLeased(r, t)));
        }
        return out;
      });
    } catch (err) {
      if (err instanceof LeaseLost) return [];
      throw toDataAccessError(err, 'Mats outbox lease');
    }
  }

  /**
   * Ends `owner`'s lease on rows whose publish failed, so a later sweep takes them again. With `countAttempt` the
   * row's `attempts` grows by one (the failure was the row's own, not an outage); `reason` is kept in `last_error`.
   */
  async releaseOutbox(
    matsMessageIds: readonly string[],
    owner: string,
    failure: { countAttempt: boolean; reason: string },
  ): Promise<void> {
    const update: Record<string, unknown> = {
      claimed_by: null,
      claimed_until: null,
      last_error: failure.reason.slice(0, 1000),
    };
    if (failure.countAttempt) update.attempts = this.db.raw('?? + 1', ['attempts']);
    try {
      for (const ids of chunk(matsMessageIds, 500)) {
        await this.db('mats_outbox')
          .whereIn('mats_message_id', ids)
          .where('claimed_by', owner)
          .update(update);
      }
    } catch (err) {
      throw toDataAccessError(err, 'Mats outbox release');
    }
  }

  /**
   * Parks a row that could neither be published nor dead-lettered: it stays in the table with `reason` in
   * `last_error` and is never swept again (an operator deletes or re-enables it by clearing `claimed_until`).
   */
  async parkOutbox(matsMessageId: string, owner: string, reason: string): Promise<void> {
    try {
      await this.db('mats_outbox')
        .where({ mats_message_id: matsMessageId, claimed_by: owner })
        .update({
          claimed_by: PARKED_OWNER,
          claimed_until: Number.MAX_SAFE_INTEGER,
          last_error: reason.slice(0, 1000),
        });
    } catch (err) {
      throw toDataAccessError(err, 'Mats outbox park');
    }
  }

  /** The sweeper state of one row (tests, operators), or undefined when it is gone. */
  async outboxRowState(
    matsMessageId: string,
  ): Promise<{ attempts: number; claimedBy: string | null; lastError: string | null } | undefined> {
    try {
      const row = await this.db<{
        attempts: number | string;
        claimed_by: string | null;
        last_error: string | null;
        mats_message_id: string;
      }>('mats_outbox')
        .where('mats_message_id', matsMessageId)
        .first('attempts', 'claimed_by', 'last_error');
      if (!row) return undefined;
      return { attempts: Number(row.attempts), claimedBy: row.claimed_by, lastError: row.last_error };
    } catch (err) {
      throw toDataAccessError(err, 'Mats outbox read');
    }
  }

  /**
   * Which of `matsMessageIds` have an outbox row (read without locks): after a caller's transaction settled, the
   * rows present are exactly those it committed and that are not yet published.
   */
  async existingOutboxIds(db: Db, matsMessageIds: readonly string[]): Promise<Set<string>> {
    const out = new Set<string>();
    try {
      for (const ids of chunk(matsMessageIds, 500)) {
        const rows = await db<OutboxRecord>('mats_outbox')
          .whereIn('mats_message_id', ids)
          .select('mats_message_id');
        for (const r of rows) out.add(r.mats_message_id);
      }
    } catch (err) {
      throw toDataAccessError(err, 'Mats outbox read');
    }
    return out;
  }

  /** Deletes outbox rows by message id (after their publish was confirmed). */
  async deleteOutbox(db: Db, matsMessageIds: readonly string[]): Promise<number> {
    let deleted = 0;
    try {
      for (const ids of chunk(matsMessageIds, 500)) {
        deleted += await db('mats_outbox').whereIn('mats_message_id', ids).delete();
      }
    } catch (err) {
      throw toDataAccessError(err, 'Mats outbox delete');
    }
    return deleted;
  }

  /** Number of rows in the outbox (monitoring, tests). */
  async countOutbox(db: Db = this.db): Promise<number> {
    return this.#count(db, 'mats_outbox');
  }

  /** Number of rows in the inbox (monitoring, tests). */
  async countInbox(db: Db = this.db): Promise<number> {
    return this.#count(db, 'mats_inbox');
  }

  async #count(db: Db, table: string): Promise<number> {
    try {
      const row = (await db(table).count({ n: '*' }).first()) as { n: number | string } | undefined;
      return Number(row?.n ?? 0);
    } catch (err) {
      throw toDataAccessError(err, `count ${table}`);
    }
  }

  /** The database's clock, epoch ms (see {@link DB_NOW_MS}). */
  async #dbNow(trx: Db): Promise<number> {
    const row = (await trx.select(trx.raw(`${DB_NOW_MS[this.dialect]} AS now_ms`)).first()) as
      { now_ms: number | string } | undefined;
    const now = Number(row?.now_ms);
    if (!Number.isFinite(now)) throw new Error(`reading the database clock gave ${String(row?.now_ms)}`);
    return now;
  }

  #lock(query: Knex.QueryBuilder): Knex.QueryBuilder {
    return this.dialect === 'sqlite' ? query : query.forUpdate().skipLocked();
  }
}

function toStored(row: OutboxRecord): StoredOutgoingMessage {
  const properties = JSON.parse(row.properties) as Omit<MessageProperties, 'headers'>;
  const headers = JSON.parse(row.headers) as Record<string, HeaderValue>;
  return {
    id: Number(row.id),
    matsMessageId: row.mats_message_id,
    causeMessageId: row.cause_message_id,
    createdTimestamp: Number(row.created_timestamp),
    message: {
      target: { kind: row.target_kind === 'topic' ? 'topic' : 'queue', name: row.target_name },
      body: Buffer.isBuffer(row.body) ? row.body : Buffer.from(row.body),
      properties: { ...properties, headers },
    },
  };
}

function toLeased(row: OutboxRecord, leasedAt: number): LeasedOutgoingMessage {
  const attempts = Number(row.attempts ?? 0);
  const ageMs = Math.max(0, leasedAt - Number(row.created_timestamp));
  try {
    return { ...toStored(row), attempts, ageMs };
  } catch (err) {
    // One corrupt row must not fail the lease of its whole batch: it is handed on to be dead-lettered.
    const stored = toStored({ ...row, properties: '{}', headers: '{}' });
    return { ...stored, attempts, ageMs, unreadable: `stored properties/headers unreadable: ${String(err)}` };
  }
}
