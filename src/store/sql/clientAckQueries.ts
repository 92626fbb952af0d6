import type { Knex } from 'knex';
import type { SessionIds } from '../storeTypes.ts';
import { INBOX_BY_CMID } from './inboxQueries.ts';
import { OUTBOX_BY_SMID } from './outboxQueries.ts';
import { deleteBySessionIds } from './sessionIdGroups.ts';
import type { StoreContext } from './StoreContext.ts';

/**
 * The client's ACKs and ACK2s of many sessions, settled together: the ACKed outbox rows and the ACK2ed inbox rows
 * deleted (`docs/store.md` 4.8). They arrive together (a client sends both in one frame), and each delete on its
 * own is a round trip nobody's reply waits for. On MySQL/MariaDB both go in one transaction whose statements travel
 * with its COMMIT: one round trip. Elsewhere the two deletes run as they did alone (on PostgreSQL a transaction
 * around them would add its BEGIN and COMMIT round trips; SQLite runs in process).
 */
export async function settleClientAcksBatch(
  ctx: StoreContext,
  completed: readonly SessionIds[],
  inboxDeleted: readonly SessionIds[],
): Promise<void> {
  const completes = (trx?: Knex.Transaction, behind = false): Promise<number> =>
    deleteBySessionIds(ctx, 'outboxMessagesComplete', OUTBOX_BY_SMID, completed, trx, behind);
  const inboxDeletes = (trx?: Knex.Transaction, behind = false): Promise<number> =>
    deleteBySessionIds(ctx, 'deleteMessageIdsFromInbox', INBOX_BY_CMID, inboxDeleted, trx, behind);
  if (ctx.dialect !== 'mysql' || completed.length === 0 || inboxDeleted.length === 0) {
    await Promise.all([completes(), inboxDeletes()]);
    return;
  }
  await ctx.tx('settleClientAcks', undefined, async (trx) => {
    await completes(trx, true);
    await inboxDeletes(trx, true);
  });
}
