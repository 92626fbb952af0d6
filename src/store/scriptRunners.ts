import type { Knex } from 'knex';
import { SCRIPT, type MysqlQueryable } from './mysqlStatementFolding.ts';
import { WriteGuardError } from './sqlErrors.ts';
import type { Statement } from './sqlText.ts';

/** A statement of a script: a write (with the number of rows it must change, if that matters) or a read. */
export interface ScriptStep {
  readonly statement: Statement;
  readonly read: boolean;
  readonly expectRows?: number | undefined;
}

/**
 * The MySQL/MariaDB guard after a write that must change `n` rows: `SELECT IF(ROW_COUNT() = n, …)`, whose scalar
 * subquery of two rows raises error 1242 (`MYSQL_GUARD_ERRNO`) otherwise, the one error plain SQL can raise on
 * demand (DO would ignore it).
 */
export function rowCountGuard(n: number): Statement {
  return { sql: 'select if(row_count() = ?, 0, (select 1 union all select 2))', bindings: [n] };
}

/** What the scripts use of knex's client: its connection pool (public methods of knex's `Client`). */
interface PoolClient {
  acquireConnection(): Promise<unknown>;
  releaseConnection(connection: unknown): Promise<void>;
}

/** What a script uses of a better-sqlite3 connection. */
interface SqliteConnection {
  prepare(sql: string): {
    all(bindings: readonly unknown[]): unknown[];
    run(bindings: readonly unknown[]): { changes: number };
  };
  transaction(fn: () => unknown[]): { immediate(): unknown[] };
}

/**
 * Runs a whole transaction on a connection of knex's pool, straight to the driver (knex's query runner would
 * parse and render the text and its bindings once more, and its transaction object costs more than the work):
 * - MySQL/MariaDB: ONE query, `BEGIN;…;COMMIT` (a failure stops it before the COMMIT, and the connection then
 *   rolls back before it reports, `mysqlStatementFolding.ts`); a write that must change `n` rows is followed by
 *   {@link rowCountGuard};
 * - SQLite: one synchronous `BEGIN IMMEDIATE … COMMIT` of better-sqlite3 (rolled back on a failure), the
 *   statements prepared once per text (`sqliteStatementCache.ts`); a write that changes another number of rows
 *   than it must throws {@link WriteGuardError}.
 * knex's `query` event is emitted for it, so whoever watches the instance's queries (the benchmarks' counters,
 * tests) sees one.
 * @returns per step, the rows of a read (undefined for a write).
 */
export async function runScript(
  db: Knex,
  dialect: 'mysql' | 'sqlite',
  steps: readonly ScriptStep[],
): Promise<unknown[]> {
  const client = db.client as PoolClient;
  const conn = await client.acquireConnection();
  try {
    return dialect === 'mysql'
      ? await runMysql(db, conn as MysqlQueryable, steps)
      : runSqlite(db, conn as SqliteConnection, steps);
  } finally {
    await client.releaseConnection(conn);
  }
}

async function runMysql(db: Knex, conn: MysqlQueryable, steps: readonly ScriptStep[]): Promise<unknown[]> {
  const statements: Statement[] = [];
  /** The index, among the query's results, of each step's own statement (BEGIN is 0). */
  const at: number[] = [];
  for (const s of steps) {
    at.push(statements.length + 1);
    statements.push(s.statement);
    if (s.expectRows !== undefined) statements.push(rowCountGuard(s.expectRows));
  }
  const sql = ['BEGIN', ...statements.map((s) => s.sql), 'COMMIT'].join(';');
  const bindings = statements.flatMap((s) => s.bindings);
  const options = { sql, [SCRIPT]: true };
  db.emit('query', { sql, bindings, options, method: 'raw' });
  const results = await new Promise<unknown[]>((resolve, reject) => {
    conn.query(options, bindings, (err: Error | null, rows?: unknown) => {
      if (err) reject(err);
      else resolve(rows as unknown[]);
    });
  });
  return steps.map((s, i) => (s.read ? results[at[i]!] : undefined));
}

function runSqlite(db: Knex, conn: SqliteConnection, steps: readonly ScriptStep[]): unknown[] {
  // The text exists only for the event: nothing is sent as one (better-sqlite3 runs one statement at a time).
  if (db.listenerCount('query') > 0) {
    const sql = ['BEGIN IMMEDIATE', ...steps.map((s) => s.statement.sql), 'COMMIT'].join(';');
    db.emit('query', { sql, bindings: steps.flatMap((s) => s.statement.bindings), method: 'raw' });
  }
  const run = conn.transaction(() =>
    steps.map((s) => {
      const statement = conn.prepare(s.statement.sql);
      if (s.read) return statement.all(s.statement.bindings);
      const { changes } = statement.run(s.statement.bindings);
      if (s.expectRows !== undefined && changes !== s.expectRows)
        throw new WriteGuardError(s.expectRows, changes);
      return undefined;
    }),
  );
  return run.immediate();
}
