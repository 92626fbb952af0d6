import type { Knex } from 'knex';
import type { Dialect } from '../database.ts';
import type { OutboxAtCommit, OutboxMessageInput, SessionState } from '../storeTypes.ts';
import { placeholders, type Statement } from '../sqlText.ts';
import type { TransactionScript } from '../TransactionScript.ts';
import { batchResults, insertBatches, outboxRow } from './outboxQueries.ts';
import { T, type StoreContext } from './StoreContext.ts';

/**
 * {@link storeMessagesInOutbox} as writes of a {@link TransactionScript} (one query on MySQL/MariaDB, one
 * synchronous transaction on SQLite, `docs/store.md` §6). The session lock is taken by the writes themselves: each
 * INSERT is an `INSERT … SELECT … JOIN mats_socket_session` over the messages' values (`LOCK IN SHARE MODE` on
 * MySQL), so a message whose session is gone is not written (as when the lock is read first), and a row is stored
 * already attempted where the session's registration is the writer's (`attemptBy`), decided by the same locked
 * row. The locked registrations are read at the commit (`TransactionScript.readAtCommit`) for the outcomes. A
 * duplicate (smid already in the session's outbox) fails the transaction.
 *
 * Returns `undefined` where this does not apply, and the caller stores the usual way: PostgreSQL, a message with a
 * request correlation, or the same (session, smid) twice in the batch.
 */
export async function storeMessagesInOutboxAtCommit(
  ctx: StoreContext,
  messages: readonly OutboxMessageInput[],
  tx: TransactionScript,
): Promise<OutboxAtCommit | undefined> {
  if (ctx.dialect === 'postgres' || messages.length === 0) return undefined;
  if (messages.some((m) => m.correlation)) return undefined;
  if (new Set(messages.map((m) => `${m.sessionId}\u0000${m.smid}`)).size !== messages.length)
    return undefined;
  const now = ctx.now();
  // By session (stably, so each session's messages keep their order): the join locks the session rows in the
  // order of the values, and sorted, as everywhere in the store, concurrent lockers cannot deadlock on them.
  const bySession = [...messages].sort((a, b) => compareIds(a.sessionId, b.sessionId));
  for (const part of insertBatches(bySession, ctx.options.inClauseChunk)) {
    await tx.write(conditionalInsert(ctx, part, now));
  }
  const reads: Promise<RegistrationRow[]>[] = [];
  const session = ctx.dialect === 'mysql' ? `\`${T.session}\` force index (\`PRIMARY\`)` : `\`${T.session}\``;
  for (const ids of ctx.chunks([...new Set(messages.map((m) => m.sessionId))].sort())) {
    reads.push(
      tx.readAtCommit<RegistrationRow>({
        sql:
          `select \`session_id\`, \`nodename\`, \`connection_id\` from ${session} ` +
          `where \`session_id\` in (${placeholders(ids.length)})${lockSuffix(ctx.dialect)}`,
        bindings: ids,
      }),
    );
  }
  const results = Promise.all(reads).then((chunks) => {
    const sessions = new Map<string, SessionState>();
    for (const rows of chunks) {
      for (const r of rows)
        sessions.set(r.session_id, { nodename: r.nodename, connectionId: r.connection_id });
    }
    return batchResults(ctx, messages, sessions);
  });
  // Nobody awaits the outcomes of a transaction that failed (its caller handles the failure): no unhandled rejection.
  results.catch(() => {});
  return { results };
}

/**
 * `INSERT INTO mats_socket_outbox (…) SELECT … FROM (<the messages' values>) v JOIN mats_socket_session s … ORDER BY
 * v.ord` ({@link sessionJoin}, {@link lockSuffix}): rows only for existing sessions, in the messages' order (the
 * auto-increment ids are the per-session store order).
 */
function conditionalInsert(
  ctx: StoreContext,
  messages: readonly OutboxMessageInput[],
  now: number,
): Statement {
  const columns = Object.keys(outboxRow(messages[0]!, now, false));
  const fromValues = columns.filter((c) => !ATTEMPT_COLUMNS.has(c) && c !== 'stored_timestamp');
  const values = valuesTable(
    ctx.dialect,
    ['ord', 'attempt_by', ...fromValues],
    messages.map((m, i) => {
      const row = outboxRow(m, now, false);
      return [i, m.attemptBy ?? null, ...fromValues.map((c) => row[c] as Knex.RawBinding)];
    }),
  );
  const byWriter = 's.`nodename` = ? and s.`connection_id` = v.attempt_by';
  const select = columns.map((c) => {
    if (c === 'stored_timestamp') return '?';
    if (c === 'attempt_timestamp') return `case when ${byWriter} then ? else null end`;
    if (c === 'delivery_count') return `case when ${byWriter} then 1 else 0 end`;
    return `v.\`${c}\``;
  });
  const node = ctx.options.nodeName;
  const selectBindings = columns.flatMap((c): Knex.RawBinding[] =>
    c === 'stored_timestamp'
      ? [now]
      : c === 'attempt_timestamp'
        ? [node, now]
        : c === 'delivery_count'
          ? [node]
          : [],
  );
  const sql =
    `insert into \`${T.outbox}\` (${columns.map((c) => `\`${c}\``).join(', ')}) ` +
    `select ${select.join(', ')} from ${values.sql} ${sessionJoin(ctx.dialect)} ` +
    `order by v.ord${lockSuffix(ctx.dialect)}`;
  return { sql, bindings: [...selectBindings, ...values.bindings] };
}

/**
 * A derived table `v` of `rows` with `columns`, for an `INSERT … SELECT` over the values: on MySQL/MariaDB a
 * `SELECT … UNION ALL …`, on SQLite a `VALUES` list (SQLite caps compound SELECTs at 500 terms, not VALUES rows).
 */
export function valuesTable(
  dialect: Dialect,
  columns: readonly string[],
  rows: readonly (readonly Knex.RawBinding[])[],
): Statement {
  const bindings = rows.flat();
  if (dialect === 'mysql') {
    const first = `select ${columns.map((c) => `? as \`${c}\``).join(', ')}`;
    const rest = ` union all select ${placeholders(columns.length)}`.repeat(rows.length - 1);
    return { sql: `(${first}${rest}) v`, bindings };
  }
  const named = columns.map((c, i) => `column${i + 1} as \`${c}\``).join(', ');
  const tuple = `(${placeholders(columns.length)})`;
  return { sql: `(select ${named} from (values ${Array(rows.length).fill(tuple).join(', ')})) v`, bindings };
}

/**
 * Joins `v` (the messages' values) to the rows of their sessions, so only existing sessions get rows: on MySQL
 * each session row looked up by primary key in the values' order (STRAIGHT_JOIN) and, with {@link lockSuffix},
 * share-locked. The session ids compare in the column's binary collation (case-sensitive), as in SQLite's default.
 */
export function sessionJoin(dialect: Dialect): string {
  const on = 'on s.`session_id` = v.`session_id`';
  return dialect === 'mysql'
    ? `straight_join \`${T.session}\` s force index (\`PRIMARY\`) ${on}`
    : `join \`${T.session}\` s ${on}`;
}

/** `LOCK IN SHARE MODE` on MySQL/MariaDB; SQLite's one writer needs no row locks. */
export function lockSuffix(dialect: Dialect): string {
  return dialect === 'mysql' ? ' lock in share mode' : '';
}

/** Binary order, as the columns' `utf8mb4_bin` collation compares the (ASCII) ids. */
export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

interface RegistrationRow {
  session_id: string;
  nodename: string;
  connection_id: string;
}

/** Set from the locked registration, not from the message. */
const ATTEMPT_COLUMNS = new Set(['attempt_timestamp', 'delivery_count']);
