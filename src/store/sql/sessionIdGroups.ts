import type { Knex } from 'knex';
import type { SessionIds } from '../storeTypes.ts';

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
