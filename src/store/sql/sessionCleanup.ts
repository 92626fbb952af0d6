import type { Knex } from 'knex';
import { affected, rowOf, T, type StoreContext } from './StoreContext.ts';

/**
 * Times out sessions not live since `notLiveSinceTs` (`docs/store.md` 2.2). Ownership of each timeout is decided by a
 * conditional DELETE per session (affected rows = 1), so of several nodes running this at once exactly one reports
 * each session. The owned sessions' inbox and outbox rows go in the same transaction.
 */
export async function timeoutSessions(
  ctx: StoreContext,
  notLiveSinceTs: number,
  trx?: Knex.Transaction,
): Promise<string[]> {
  const batch = ctx.options.inClauseChunk;
  const owned: string[] = [];
  for (;;) {
    const candidates = await ctx.read('timeoutSessions (candidates)', trx, async (db) =>
      (
        (await db(T.session)
          .select('session_id')
          .where('liveliness_timestamp', '<', notLiveSinceTs)
          .orderBy('liveliness_timestamp')
          .limit(batch)) as { session_id: string }[]
      ).map((r) => r.session_id),
    );
    if (candidates.length === 0) break;
    // Sorted: concurrent timeout jobs then delete in the same order and do not deadlock each other.
    candidates.sort();
    const ownedNow = await ctx.tx('timeoutSessions', trx, async (t) => {
      const mine: string[] = [];
      for (const sid of candidates) {
        const n = await t(T.session)
          .where('session_id', sid)
          .where('liveliness_timestamp', '<', notLiveSinceTs)
          .delete();
        if (affected(n) === 1) mine.push(sid);
      }
      for (const ids of ctx.chunks(mine)) {
        await ctx.deleteWithIndex(t, t(T.inbox).whereIn('session_id', ids), T.inbox, 'PRIMARY');
        await ctx.deleteWithIndex(t, t(T.outbox).whereIn('session_id', ids), T.outbox, 'ux_mso_smid');
      }
      return mine;
    });
    owned.push(...ownedNow);
    if (candidates.length < batch) break;
  }
  return owned;
}

/**
 * Safety net for orphaned inbox/outbox rows (`docs/store.md` 2.2, 6): looks only at rows stored in the window since the
 * previous run (minus an overlap, and at least `scavengeMinAgeMs` old), via the `stored_timestamp` indexes, and
 * deletes those whose session no longer exists. The first run looks back 2 × `scavengeIntervalMs`.
 */
export async function scavengeSessionRemnants(ctx: StoreContext, trx?: Knex.Transaction): Promise<number> {
  const { scavengeIntervalMs, scavengeOverlapMs, scavengeMinAgeMs, inClauseChunk } = ctx.options;
  const now = ctx.now();
  const upper = now - scavengeMinAgeMs;
  const previous = ctx.state.scavengedUpTo;
  const lower = previous === undefined ? now - 2 * scavengeIntervalMs : previous - scavengeOverlapMs;
  let deleted = 0;
  if (upper > lower) {
    for (const table of [T.inbox, T.outbox]) {
      for (;;) {
        const orphans = await ctx.read('scavengeSessionRemnants (window)', trx, async (db) =>
          (
            (await db(`${table} as b`)
              .distinct('b.session_id')
              .where('b.stored_timestamp', '>=', lower)
              .where('b.stored_timestamp', '<', upper)
              .whereNotExists(rowOf(db, T.session, 'session_id', 'b.session_id'))
              .limit(inClauseChunk)) as { session_id: string }[]
          ).map((r) => r.session_id),
        );
        if (orphans.length === 0) break;
        deleted += await ctx.tx('scavengeSessionRemnants', trx, async (t) => {
          let n = 0;
          for (const ids of ctx.chunks(orphans)) {
            const qb = t(table)
              .whereIn('session_id', ids)
              .whereNotExists(rowOf(t, T.session, 'session_id', `${table}.session_id`));
            n += await ctx.deleteWithIndex(t, qb, table, table === T.inbox ? 'PRIMARY' : 'ux_mso_smid');
          }
          return n;
        });
        if (orphans.length < inClauseChunk) break;
      }
    }
  }
  ctx.state.scavengedUpTo = Math.max(upper, previous ?? upper);
  if (deleted > 0) ctx.options.logger.warn({ deleted }, 'scavenger deleted orphaned inbox/outbox rows');
  return deleted;
}
