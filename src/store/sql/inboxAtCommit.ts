import type { MessageRef } from '../storeTypes.ts';
import type { TransactionScript } from '../TransactionScript.ts';
import { compareIds, sessionJoin, valuesTable } from './outboxAtCommit.ts';
import { T, type StoreContext } from './StoreContext.ts';

/**
 * {@link storeMessageIdsInInbox} as a write of a {@link TransactionScript}, in no round trip of its own, on
 * MySQL/MariaDB and SQLite, for a caller that commits the items again one by one if its transaction fails (a group
 * commit's fallback): the inbox rows are written by `INSERT … SELECT … FROM <the ids> JOIN mats_socket_session`
 * (only for existing sessions, whose rows it share-locks on MySQL, as the usual way's lock read does), and the
 * write must change one row per item (`expectRows`: on MySQL a guard right after it raises error 1242,
 * `MYSQL_GUARD_ERRNO` in `sqlErrors.ts`; on SQLite the count is checked) or the transaction fails; a duplicate fails
 * it too (unique violation). So when the transaction commits, every item was STORED; the fallback tells duplicates
 * and closed sessions apart item by item (`causedByOptimisticConflict`).
 *
 * @returns false where this does not apply (PostgreSQL, more items than one statement takes, the same
 * (session, cmid) twice): store the usual way then.
 */
export async function storeMessageIdsInInboxAtCommit(
  ctx: StoreContext,
  items: readonly MessageRef[],
  tx: TransactionScript,
): Promise<boolean> {
  if (ctx.dialect === 'postgres' || items.length === 0 || items.length > ctx.options.inClauseChunk)
    return false;
  if (new Set(items.map((i) => `${i.sessionId}\u0000${i.cmid}`)).size !== items.length) return false;
  // By session: the join share-locks the session rows in this order (sorted, as everywhere in the store).
  const bySession = [...items].sort((a, b) => compareIds(a.sessionId, b.sessionId));
  const values = valuesTable(
    ctx.dialect,
    ['session_id', 'cmid'],
    bySession.map((i) => [i.sessionId, i.cmid]),
  );
  await tx.write(
    {
      sql:
        `insert into \`${T.inbox}\` (\`session_id\`, \`cmid\`, \`stored_timestamp\`) ` +
        `select v.\`session_id\`, v.\`cmid\`, ? from ${values.sql} ${sessionJoin(ctx.dialect)}`,
      bindings: [ctx.now(), ...values.bindings],
    },
    { expectRows: items.length },
  );
  return true;
}
