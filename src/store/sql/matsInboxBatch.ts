import type { Knex } from 'knex';
import type { MatsMessageStore } from '../MatsMessageStore.ts';
import type { Dialect } from '../database.ts';
import { isUniqueViolation, toDataAccessError } from '../sqlErrors.ts';

/**
 * Records many received Mats messages of one stage in `mats_inbox` (de-duplication by matsMessageId) inside `trx`,
 * in ONE multi-row INSERT in the common case: inserting them one by one inside a savepoint each costs three
 * statements per message on the reply hot path. Only if that INSERT hits a unique violation (a redelivery) are the
 * messages inserted one by one through {@link MatsMessageStore.insertInbox} to tell which ones are duplicates.
 *
 * A failed statement leaves `trx` usable: MySQL/MariaDB and SQLite roll back just the failed statement; on
 * PostgreSQL the INSERT runs in a savepoint.
 *
 * @returns per id, in order: true if recorded now, false if it was already there (a duplicate).
 */
export async function insertMatsInboxBatch(
  trx: Knex.Transaction,
  dialect: Dialect,
  matsStore: MatsMessageStore,
  stageId: string,
  matsMessageIds: readonly string[],
  now: number,
): Promise<boolean[]> {
  if (matsMessageIds.length === 0) return [];
  const unique = new Set(matsMessageIds);
  if (unique.size === matsMessageIds.length) {
    const rows = matsMessageIds.map((id) => ({
      stage_id: stageId,
      mats_message_id: id,
      received_timestamp: now,
    }));
    try {
      if (dialect === 'postgres') await trx.transaction(async (sp) => sp('mats_inbox').insert(rows));
      else await trx('mats_inbox').insert(rows);
      return matsMessageIds.map(() => true);
    } catch (err) {
      if (!isUniqueViolation(err)) throw toDataAccessError(err, 'Mats inbox batch insert');
    }
  }
  const results: boolean[] = [];
  for (const id of matsMessageIds) results.push(await matsStore.insertInbox(trx, stageId, id, now));
  return results;
}
