import type { Knex } from 'knex';
import { MATS_MIGRATIONS_TABLE, matsMigrations } from '../../migrations/mats/index.ts';
import type { HeaderValue, MessageProperties, OutgoingMessage } from '../broker/Transport.ts';
import { chunk } from '../util/chunk.ts';
import { dialectOf, type Dialect } from './database.ts';
import { isUniqueViolation, toDataAccessError } from './sqlErrors.ts';

/** An outgoing message stored in `mats_outbox`, as read back for publishing. */
export interface StoredOutgoingMessage {
  /** Auto-increment row id (sweeper order). */
  id: number;
  matsMessageId: string;
  causeMessageId: string | null;
  createdTimestamp: number;
  message: OutgoingMessage;
}

type Db = Knex | Knex.Transaction;

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
   * @returns per id, in order: true if recorded now, false if it was already there.
   */
  async insertInboxBatch(
    trx: Knex.Transaction,
    stageId: string,
    matsMessageIds: readonly string[],
    now: number,
  ): Promise<boolean[]> {
    if (matsMessageIds.length === 0) return [];
    if (new Set(matsMessageIds).size === matsMessageIds.length) {
      const rows = matsMessageIds.map((id) => ({
        stage_id: stageId,
        mats_message_id: id,
        received_timestamp: now,
      }));
      const parts = chunk(rows, 500);
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

  /** Deletes inbox rows received before `olderThan` (epoch ms); returns how many. */
  async purgeInbox(olderThan: number): Promise<number> {
    try {
      return await this.db('mats_inbox').where('received_timestamp', '<', olderThan).delete();
    } catch (err) {
      throw toDataAccessError(err, 'Mats inbox purge');
    }
  }

  /** Inserts outgoing messages into the outbox in `trx`. */
  async insertOutbox(
    trx: Db,
    messages: ReadonlyArray<{
      message: OutgoingMessage;
      matsMessageId: string;
      causeMessageId: string | undefined;
    }>,
    now: number,
  ): Promise<void> {
    if (messages.length === 0) return;
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
      for (const part of chunk(rows, 20)) await trx('mats_outbox').insert(part);
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
   * Claims the rows with the given message ids that still exist (i.e. were committed and not yet published),
   * locking them against sweepers on other nodes (`FOR UPDATE SKIP LOCKED`; SQLite has one writer anyway).
   */
  async claimOutboxByIds(
    trx: Knex.Transaction,
    matsMessageIds: readonly string[],
  ): Promise<StoredOutgoingMessage[]> {
    const out: StoredOutgoingMessage[] = [];
    try {
      for (const ids of chunk(matsMessageIds, 500)) {
        const rows = (await this.#lock(
          trx('mats_outbox').whereIn('mats_message_id', ids).orderBy('id'),
        )) as OutboxRecord[];
        out.push(...rows.map(toStored));
      }
    } catch (err) {
      throw toDataAccessError(err, 'Mats outbox claim');
    }
    return out;
  }

  /**
   * Claims up to `limit` rows created before `olderThan` (epoch ms), oldest id first, skipping rows locked by
   * another sweeper (`FOR UPDATE SKIP LOCKED` on MySQL/MariaDB and PostgreSQL).
   */
  async claimOutboxBatch(
    trx: Knex.Transaction,
    olderThan: number,
    limit: number,
  ): Promise<StoredOutgoingMessage[]> {
    try {
      const rows = (await this.#lock(
        trx('mats_outbox').where('created_timestamp', '<', olderThan).orderBy('id').limit(limit),
      )) as OutboxRecord[];
      return rows.map(toStored);
    } catch (err) {
      throw toDataAccessError(err, 'Mats outbox sweep');
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
