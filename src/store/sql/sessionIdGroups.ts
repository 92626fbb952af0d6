import type { Knex } from 'knex';
import type { SessionIds } from '../storeTypes.ts';
import type { StoreContext } from './StoreContext.ts';

/**
 * Splits (session, ids) entries into statement-sized groups of at most `size` ids in total, merging entries of the
 * same session and dropping empty ones, so a batch over many sessions costs few statements.
 */
export function groupChunks(entries: readonly SessionIds[], size: number): SessionIds[][] {
  const bySession = new Map<string, Set<string>>();
  for (const e of entries) {
    let set = bySession.get(e.sessionId);
    if (!set) bySession.set(e.sessionId, (set = new Set()));
    for (const id of e.ids) set.add(id);
  }
  const groups: SessionIds[][] = [];
  let current: SessionIds[] = [];
  let count = 0;
  for (const [sessionId, set] of bySession) {
    const ids = [...set];
    for (let i = 0; i < ids.length;) {
      if (count === size) {
        groups.push(current);
        current = [];
        count = 0;
      }
      const take = Math.min(size - count, ids.length - i);
      current.push({ sessionId, ids: ids.slice(i, i + take) });
      count += take;
      i += take;
    }
  }
  if (current.length > 0) groups.push(current);
  return groups;
}

/**
 * `WHERE (session_id = ? AND <idColumn> IN (…)) OR (…)`: each disjunct is an equality plus IN-list on a key prefix,
 * which every optimizer turns into index ranges (row-value IN-lists are not range-optimized everywhere).
 */
export function whereSessionIds<Q extends Knex.QueryBuilder>(
  qb: Q,
  idColumn: string,
  group: readonly SessionIds[],
  sessionColumn = 'session_id',
): Q {
  return qb.where((b) => {
    for (const g of group) {
      b.orWhere((w) => {
        void w.where(sessionColumn, g.sessionId).whereIn(idColumn, g.ids);
      });
    }
  }) as Q;
}

/**
 * Runs `statement` once per group of at most `inClauseChunk` ids (see `groupChunks`), in one transaction when there
 * is more than one group. @returns the sum of the statements' row counts.
 */
export function writeBySessionIdGroups(
  ctx: StoreContext,
  operation: string,
  entries: readonly SessionIds[],
  trx: Knex.Transaction | undefined,
  statement: (db: Knex, group: SessionIds[]) => Promise<number>,
): Promise<number> {
  const groups = groupChunks(entries, ctx.options.inClauseChunk);
  if (groups.length === 0) return Promise.resolve(0);
  return ctx.write(
    operation,
    trx,
    async (db) => {
      let n = 0;
      for (const group of groups) n += await statement(db, group);
      return n;
    },
    groups.length > 1,
  );
}

/**
 * Deletes the rows named by (session, ids) entries from `table`. `index` is the unique index over (session, id)
 * that MySQL is told to use. @returns the number of rows deleted.
 */
export function deleteBySessionIds(
  ctx: StoreContext,
  operation: string,
  target: { table: string; idColumn: string; index: string },
  entries: readonly SessionIds[],
  trx?: Knex.Transaction,
): Promise<number> {
  return writeBySessionIdGroups(ctx, operation, entries, trx, (db, group) =>
    ctx.deleteWithIndex(
      db,
      whereSessionIds(db(target.table), target.idColumn, group),
      target.table,
      target.index,
    ),
  );
}
