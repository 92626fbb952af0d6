import type { Dialect } from '../database.ts';
import { placeholders, type Statement } from '../sqlText.ts';
import type { SessionIds } from '../storeTypes.ts';
import { INBOX_BY_CMID } from './inboxQueries.ts';
import { OUTBOX_BY_SMID } from './outboxQueries.ts';
import { deleteBySessionIds, groupChunks } from './sessionIdGroups.ts';
import type { StoreContext } from './StoreContext.ts';

/**
 * The client's ACKs and ACK2s of many sessions, settled together: the ACKed outbox rows and the ACK2ed inbox rows
 * deleted (`docs/store.md` 4.8). They arrive together (a client sends both in one frame), and each delete on its
 * own is a round trip nobody's reply waits for. On MySQL/MariaDB and SQLite both go in one transaction script (one
 * query; one synchronous transaction). On PostgreSQL the two deletes run as they did alone (a transaction around
 * them would add its BEGIN and COMMIT round trips).
 */
export async function settleClientAcksBatch(
  ctx: StoreContext,
  completed: readonly SessionIds[],
  inboxDeleted: readonly SessionIds[],
): Promise<void> {
  if (ctx.dialect === 'postgres') {
    await Promise.all([
      deleteBySessionIds(ctx, 'outboxMessagesComplete', OUTBOX_BY_SMID, completed),
      deleteBySessionIds(ctx, 'deleteMessageIdsFromInbox', INBOX_BY_CMID, inboxDeleted),
    ]);
    return;
  }
  await ctx.script('settleClientAcks', async (tx) => {
    for (const [target, entries] of [
      [OUTBOX_BY_SMID, completed],
      [INBOX_BY_CMID, inboxDeleted],
    ] as const) {
      for (const group of groupChunks(entries, ctx.options.inClauseChunk)) {
        await tx.write(deleteBySessionIdsStatement(ctx.dialect, target, group));
      }
    }
  });
}

/**
 * `DELETE FROM t WHERE (session_id = ? AND id IN (…)) OR …`, as `deleteBySessionIds` sends it, written without
 * knex; on MySQL/MariaDB `DELETE t FROM t FORCE INDEX (index) …` (see `StoreContext.table` for the index hint).
 */
function deleteBySessionIdsStatement(
  dialect: Dialect,
  target: { table: string; idColumn: string; index: string },
  group: readonly SessionIds[],
): Statement {
  const table = `\`${target.table}\``;
  const where = group
    .map((g) => `(\`session_id\` = ? and \`${target.idColumn}\` in (${placeholders(g.ids.length)}))`)
    .join(' or ');
  return {
    sql:
      dialect === 'mysql'
        ? `delete ${table} from ${table} force index (\`${target.index}\`) where ${where}`
        : `delete from ${table} where ${where}`,
    bindings: group.flatMap((g) => [g.sessionId, ...g.ids]),
  };
}
