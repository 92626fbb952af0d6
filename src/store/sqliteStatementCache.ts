/** What the cache needs of a better-sqlite3 `Database`. */
interface PreparingConnection {
  prepare(sql: string): unknown;
}

/** Distinct SQL texts kept prepared per connection at most (multi-row INSERTs vary in their row count). */
export const SQLITE_STATEMENT_CACHE_SIZE = 256;

/**
 * Makes a better-sqlite3 connection hand out one prepared statement per SQL text instead of preparing it anew on
 * every query (knex's better-sqlite3 dialect calls `prepare()` for each query): compiling the SQL was ~6 % of the
 * embedded node's CPU on the sessions benchmark. Safe because better-sqlite3 runs a statement synchronously to
 * completion (`all()`/`run()`), so a statement is never in use twice at once on the connection. The least
 * recently used text goes when the cache is full.
 */
export function cachePreparedStatements(conn: PreparingConnection, size = SQLITE_STATEMENT_CACHE_SIZE): void {
  const prepare = conn.prepare.bind(conn);
  const cache = new Map<string, unknown>();
  conn.prepare = (sql: string): unknown => {
    let statement = cache.get(sql);
    if (statement !== undefined) {
      cache.delete(sql);
    } else {
      statement = prepare(sql);
      if (cache.size >= size) cache.delete(cache.keys().next().value!);
    }
    cache.set(sql, statement);
    return statement;
  };
}
