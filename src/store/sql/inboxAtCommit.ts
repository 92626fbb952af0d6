import type { MessageRef } from '../storeTypes.ts';
import type { TransactionScript } from '../TransactionScript.ts';
import { compareIds } from './outboxAtCommit.ts';
import { T, type StoreContext } from './StoreContext.ts';

/**
 * {@link storeMessageIdsInInbox} as writes of a {@link TransactionScript}, in no round trip of its own, on MySQL/MariaDB, for a caller
 * that commits the items again one by one if its transaction fails (a group commit's fallback): the inbox rows are
 * written by `INSERT … SELECT … FROM mats_socket_session … LOCK IN SHARE MODE` (only for existing sessions, whose
 * rows it share-locks, as the usual way's lock read does), and a guard right after it fails the transaction unless
 * every item was written (`SELECT IF(ROW_COUNT() = n, …)`, raising MySQL error 1242, `MYSQL_GUARD_ERRNO` in `sqlErrors.ts`); a
 * duplicate fails it too (unique violation). Both travel with the transaction's next statement, usually its
 * COMMIT. So when the transaction commits, every item was STORED; the fallback tells duplicates and closed sessions
 * apart item by item (`causedByOptimisticConflict`).
 *
 * @returns false where this does not apply (not MySQL, more items than one statement takes, the same
 * (session, cmid) twice): store the usual way then.
 */
export async function storeMessageIdsInInboxAtCommit(
  ctx: StoreContext,
  items: readonly MessageRef[],
  tx: TransactionScript,
): Promise<boolean> {
  if (ctx.dialect !== 'mysql' || items.length === 0 || items.length > ctx.options.inClauseChunk) return false;
  if (new Set(items.map((i) => `${i.sessionId}\u0000${i.cmid}`)).size !== items.length) return false;
  // By session: the join share-locks the session rows in this order (sorted, as everywhere in the store).
  const bySession = [...items].sort((a, b) => compareIds(a.sessionId, b.sessionId));
  const values = bySession.map(() => 'select ? as `session_id`, ? as `cmid`').join(' union all ');
  await tx.write({
    sql:
      `insert into \`${T.inbox}\` (\`session_id\`, \`cmid\`, \`stored_timestamp\`) ` +
      `select v.\`session_id\`, v.\`cmid\`, ? from (${values}) v ` +
      `straight_join \`${T.session}\` s force index (\`PRIMARY\`) on s.\`session_id\` = v.\`session_id\` ` +
      'lock in share mode',
    bindings: [ctx.now(), ...bySession.flatMap((i) => [i.sessionId, i.cmid])],
  });
  // A scalar subquery of two rows is the one error plain SQL can raise on demand (DO would ignore it).
  await tx.write({
    sql: 'select if(row_count() = ?, 0, (select 1 union all select 2))',
    bindings: [items.length],
  });
  return true;
}
