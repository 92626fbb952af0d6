/**
 * The part of a mysql2 connection knex uses: `query(options, values, callback)`, and without a callback (knex's
 * streams) the returned query object.
 */
export interface MysqlQueryable {
  query(...args: unknown[]): unknown;
}

type QueryCallback = (err: Error | null, rows?: unknown, fields?: unknown) => void;

/** What a statement that returned no rows reports, for the BEGIN/COMMIT that never reached the server. */
const OK_PACKET = Object.freeze({
  fieldCount: 0,
  affectedRows: 0,
  insertId: 0,
  info: '',
  serverStatus: 0,
  warningStatus: 0,
  changedRows: 0,
});

const BEGIN = /^\s*(BEGIN|START TRANSACTION)\s*;?\s*$/i;
const END = /^\s*(COMMIT|ROLLBACK)\s*;?\s*$/i;

/**
 * Makes `conn` send a transaction's `BEGIN` in the same write as the transaction's first statement: knex opens a
 * transaction with a `BEGIN;` of its own, a database round trip that carries nothing. On the hot paths a
 * transaction has three or four statements, so this saves a fifth to a quarter of the round trips, which on
 * MariaDB cost more CPU than the statements themselves (docs/store.md §6).
 *
 * Needs the connection opened with `multipleStatements: true` (the pair goes as one query of two statements).
 * Semantics are unchanged: the server runs `BEGIN` and then the statement, in order, on this connection; if the
 * statement fails, the transaction is open and knex rolls it back as it would have; if `BEGIN` itself fails, the
 * statement is not run and its caller gets the error. A transaction that ends without a statement sends nothing.
 *
 * Wraps the instance's public `query` (set up in the pool's `afterCreate`); knex and mysql2 stay unpatched.
 */
export function deferBegin(conn: MysqlQueryable): void {
  const query = conn.query.bind(conn);
  let beginPending = false;
  conn.query = (...args: unknown[]): unknown => {
    const [options, values, callback] = args as [string | { sql: string }, unknown, unknown];
    const sql = typeof options === 'string' ? options : options.sql;
    if (typeof callback !== 'function') {
      // A stream: no result to split, so the BEGIN goes first on its own (the connection runs commands in order).
      if (beginPending) {
        beginPending = false;
        query('BEGIN', [], () => undefined);
      }
      return query(...args);
    }
    const done = callback as QueryCallback;
    if (BEGIN.test(sql)) {
      beginPending = true;
      queueMicrotask(() => done(null, OK_PACKET, undefined));
      return undefined;
    }
    if (!beginPending) return query(...args);
    beginPending = false;
    if (END.test(sql)) {
      // Nothing ran since BEGIN: there is no transaction on the server to end.
      queueMicrotask(() => done(null, OK_PACKET, undefined));
      return undefined;
    }
    const withBegin = typeof options === 'string' ? `BEGIN;${sql}` : { ...options, sql: `BEGIN;${sql}` };
    return query(withBegin, values, (err: Error | null, rows?: unknown, fields?: unknown) => {
      if (err) return done(err);
      done(null, (rows as unknown[])[1], (fields as unknown[] | undefined)?.[1]);
    });
  };
}
