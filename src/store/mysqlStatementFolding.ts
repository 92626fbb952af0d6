import type { Knex } from 'knex';

/**
 * The part of a mysql2 connection knex uses: `query(options, values, callback)`, and without a callback (knex's
 * streams) the returned query object; `format` renders values into SQL the way `query` does.
 */
export interface MysqlQueryable {
  query(...args: unknown[]): unknown;
  format(sql: string, values?: unknown): string;
}

type QueryCallback = (err: Error | null, rows?: unknown, fields?: unknown) => void;

/** The query option (knex `.options()`) marking a write whose result nobody reads ({@link writeBehind}). */
const WRITE_BEHIND = 'matssocketWriteBehind';

/** The query option marking a read answered when the transaction's next statement is ({@link readAtCommit}). */
const READ_AT_COMMIT = 'matssocketReadAtCommit';

/**
 * The query option marking a whole transaction sent as one query, `BEGIN;…;COMMIT` (`TransactionScript`): if a
 * statement of it fails, the COMMIT did not run and the transaction is open on the connection, which then rolls it
 * back before reporting the failure (the pool must not hand out a connection inside a transaction).
 */
export const SCRIPT = 'matssocketScript';

/** A statement not sent yet; `done` when its caller waits for its result ({@link readAtCommit}). */
interface Held {
  sql: string;
  done?: QueryCallback;
}

/** What a statement that returned no rows reports, for the statements answered before they reached the server. */
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
const COMMIT = /^\s*COMMIT\s*;?\s*$/i;
const ROLLBACK = /^\s*ROLLBACK\s*;?\s*$/i;

/**
 * Marks `qb`, a write in a transaction whose result the caller does not read, to travel with the transaction's
 * next statement (at the latest its COMMIT) instead of on its own round trip, on connections set up by
 * {@link foldStatements}. Its failure (it cannot be told apart from the next statement's) then fails that next
 * statement, which fails the transaction as the write's own failure would have: so only for writes whose
 * failure nobody handles on its own (no unique violation expected). Outside a transaction it is sent at once.
 */
export function writeBehind<Q extends Knex.ChainableInterface>(qb: Q): Q {
  return qb.options({ [WRITE_BEHIND]: true });
}

/**
 * Marks `qb`, a read in a transaction, to travel with the transaction's next statement (usually its COMMIT), like a
 * {@link writeBehind} write, and to be answered with that statement: its promise settles only once the next
 * statement was sent, so the caller must not await it before issuing that statement (e.g. it reads the session
 * rows its conditional writes locked, and the results are used after the commit). If the query fails, or the
 * transaction is rolled back before the read was sent, the read fails too. Outside a transaction it is sent at once.
 */
export function readAtCommit<Q extends Knex.ChainableInterface>(qb: Q): Q {
  return qb.options({ [READ_AT_COMMIT]: true });
}

/** What a held read gets when its transaction is rolled back before it was sent. */
function rolledBack(): Error {
  return new Error('the transaction was rolled back before this read was sent (readAtCommit)');
}

/**
 * Answers the held reads of a query that ran, `held` being its first statements out of `statements`: each its own
 * result (a query of one statement reports that statement's result, not a list of them), or the query's failure.
 */
function answerHeld(
  held: readonly Held[],
  statements: number,
  err: Error | null,
  rows: unknown,
  fields: unknown,
): void {
  held.forEach((h, i) => {
    if (!h.done) return;
    if (err) h.done(err);
    else if (statements === 1) h.done(null, rows, fields);
    else h.done(null, (rows as unknown[])[i], (fields as unknown[] | undefined)?.[i]);
  });
}

/**
 * Saves MySQL/MariaDB round trips on `conn` by sending statements together that knex sends one by one, with
 * `multipleStatements: true` on the connection (the statements of one query run in order, and the first failure
 * stops the rest):
 * - a transaction's `BEGIN` (knex sends it alone, a round trip that carries nothing) goes with the first
 *   statement; a transaction that ends before any statement sends nothing;
 * - a {@link writeBehind} write goes with the next statement, at the latest the COMMIT (dropped with a ROLLBACK,
 *   which would undo it anyway).
 * Each caller gets its own statement's result or the error that stopped the query. If a COMMIT's query fails
 * before the COMMIT ran, the connection rolls the transaction back before reporting the error, so no
 * transaction stays open on a pooled connection; likewise a failed {@link SCRIPT}.
 *
 * Wraps the instance's public `query` (in the pool's `afterCreate`); knex and mysql2 stay unpatched.
 */
export function foldStatements(conn: MysqlQueryable): void {
  const query = conn.query.bind(conn);
  let inTransaction = false;
  /** BEGIN, write-behind and read-at-commit statements not sent yet, rendered with their values. */
  let held: Held[] = [];
  /** The failure of what was held and sent ahead of a stream, for the transaction's next statement to report. */
  let heldFailure: Error | undefined;

  const answer = (done: QueryCallback): undefined => {
    queueMicrotask(() => done(null, OK_PACKET, undefined));
    return undefined;
  };

  conn.query = (...args: unknown[]): unknown => {
    const [options, values, callback] = args as [string | Record<string, unknown>, unknown, unknown];
    const sql = typeof options === 'string' ? options : (options.sql as string);
    if (typeof callback !== 'function') {
      // A stream: no result to split, so what is held goes first on its own (the connection keeps the order).
      if (held.length > 0) {
        const before = held;
        query(
          before.map((h) => h.sql).join(';'),
          [],
          (err: Error | null, rows?: unknown, fields?: unknown) => {
            if (err && inTransaction) heldFailure = err;
            answerHeld(before, before.length, err, rows, fields);
          },
        );
      }
      held = [];
      return query(...args);
    }
    const done = callback as QueryCallback;
    if (typeof options === 'object' && options[SCRIPT] === true) {
      return query(options, values, (err: Error | null, rows?: unknown, fields?: unknown) => {
        if (!err) return done(null, rows, fields);
        query('ROLLBACK', [], () => done(err));
      });
    }
    if (heldFailure && !ROLLBACK.test(sql)) {
      // A held write sent ahead of a stream failed: the transaction must not go on (or commit) without it.
      const err = heldFailure;
      heldFailure = undefined;
      if (COMMIT.test(sql)) {
        inTransaction = false;
        return query('ROLLBACK', [], () => done(err));
      }
      queueMicrotask(() => done(err));
      return undefined;
    }
    if (BEGIN.test(sql)) {
      inTransaction = true;
      held = [{ sql: 'BEGIN' }];
      return answer(done);
    }
    if (ROLLBACK.test(sql)) {
      heldFailure = undefined;
      const started = held[0]?.sql !== 'BEGIN';
      for (const h of held) h.done?.(rolledBack());
      held = [];
      inTransaction = false;
      // Nothing reached the server since BEGIN: there is no transaction there to end.
      return started ? query(...args) : answer(done);
    }
    if (inTransaction && typeof options === 'object' && options[WRITE_BEHIND] === true) {
      held.push({ sql: conn.format(sql, values) });
      return answer(done);
    }
    if (inTransaction && typeof options === 'object' && options[READ_AT_COMMIT] === true) {
      held.push({ sql: conn.format(sql, values), done });
      return undefined;
    }
    const isCommit = COMMIT.test(sql);
    if (isCommit) inTransaction = false;
    if (held.length === 0) return query(...args);
    const before = held;
    held = [];
    if (isCommit && before.length === 1 && before[0]!.sql === 'BEGIN') return answer(done);
    const folded = {
      ...(typeof options === 'object' ? options : {}),
      sql: `${before.map((h) => h.sql).join(';')};${sql}`,
    };
    return query(folded, values, (err: Error | null, rows?: unknown, fields?: unknown) => {
      const own = before.length;
      answerHeld(before, own + 1, err, rows, fields);
      if (!err) return done(null, (rows as unknown[])[own], (fields as unknown[] | undefined)?.[own]);
      // A held write failed, so this COMMIT did not run and the transaction is still open: end it here.
      if (isCommit) return query('ROLLBACK', [], () => done(err));
      done(err);
    });
  };
}
