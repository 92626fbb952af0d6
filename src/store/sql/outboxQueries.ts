import type { Knex } from 'knex';
import { MessageIdAlreadyExistsError } from '../../errors.ts';
import { writeBehind } from '../mysqlStatementFolding.ts';
import { isUniqueViolation } from '../sqlErrors.ts';
import type {
  OutboxMessageInput,
  OutboxMessageType,
  SessionIds,
  StoreInOutboxBatchResult,
  BatchWriteOptions,
  SessionState,
  StoreInOutboxResult,
  StoredOutMessage,
} from '../storeTypes.ts';
import { correlationRow } from './correlationQueries.ts';
import { lockSessionForShare, lockSessionsForShare, registrationOf } from './sessionQueries.ts';
import { deleteBySessionIds, whereSessionIds, writeBySessionIdGroups } from './sessionIdGroups.ts';
import { affected, num, numOrNull, T, type StoreContext } from './StoreContext.ts';

const NONE: ReadonlySet<OutboxMessageInput> = new Set();

/** Multi-row INSERTs are also cut at about this many bytes of text, to stay far below `max_allowed_packet`. */
const MAX_INSERT_BYTES = 1 << 20;

interface OutboxRow {
  id: number | string;
  smid: string;
  cmid: string | null;
  trace_id: string;
  type: string;
  request_timestamp: number | string | null;
  stored_timestamp: number | string;
  attempt_timestamp: number | string | null;
  delivery_count: number | string;
  envelope: string;
  message_text: string | null;
  message_binary: Uint8Array | null;
}

export function outboxRow(m: OutboxMessageInput, now: number, attempted: boolean): Record<string, unknown> {
  return {
    session_id: m.sessionId,
    smid: m.smid,
    cmid: m.cmid ?? null,
    trace_id: m.traceId,
    type: m.type,
    request_timestamp: m.requestTs ?? null,
    stored_timestamp: now,
    attempt_timestamp: attempted ? now : null,
    delivery_count: attempted ? 1 : 0,
    envelope: m.envelope,
    message_text: m.messageText ?? null,
    message_binary: m.messageBinary ?? null,
  };
}

function approxBytes(m: OutboxMessageInput): number {
  return (
    m.envelope.length + (m.messageText?.length ?? 0) + (m.messageBinary?.byteLength ?? 0) + m.traceId.length
  );
}

/** Splits messages into multi-row INSERTs of at most `maxRows` rows and about {@link MAX_INSERT_BYTES}. */
export function insertBatches(
  messages: readonly OutboxMessageInput[],
  maxRows: number,
): OutboxMessageInput[][] {
  const out: OutboxMessageInput[][] = [];
  let current: OutboxMessageInput[] = [];
  let bytes = 0;
  for (const m of messages) {
    const size = approxBytes(m);
    if (current.length > 0 && (current.length >= maxRows || bytes + size > MAX_INSERT_BYTES)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(m);
    bytes += size;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/** How many INSERT statements {@link insertMessages} sends for `messages`. */
function insertStatements(ctx: StoreContext, messages: readonly OutboxMessageInput[]): number {
  const correlations = messages.filter((m) => m.correlation).length;
  return (
    insertBatches(messages, ctx.options.inClauseChunk).length +
    Math.ceil(correlations / ctx.options.inClauseChunk)
  );
}

async function insertMessages(
  ctx: StoreContext,
  trx: Knex.Transaction,
  messages: readonly OutboxMessageInput[],
  attempted: ReadonlySet<OutboxMessageInput> = NONE,
  behind = false,
): Promise<void> {
  const now = ctx.now();
  const send = (qb: Knex.QueryBuilder): Knex.QueryBuilder => (behind ? writeBehind(qb) : qb);
  for (const part of insertBatches(messages, ctx.options.inClauseChunk)) {
    await send(trx(T.outbox).insert(part.map((m) => outboxRow(m, now, attempted.has(m)))));
  }
  const correlations = messages.flatMap((m) =>
    m.correlation
      ? [correlationRow({ ...m.correlation, sessionId: m.sessionId, smid: m.smid, traceId: m.traceId })]
      : [],
  );
  for (const part of ctx.chunks(correlations)) await send(trx(T.requestOut).insert(part));
}

export function storeMessageInOutbox(
  ctx: StoreContext,
  message: OutboxMessageInput,
  trx?: Knex.Transaction,
): Promise<StoreInOutboxResult> {
  return ctx.tx('storeMessageInOutbox', trx, async (t, owned) => {
    const state = await lockSessionForShare(ctx, t, message.sessionId);
    if (!state) return { sessionExists: false, currentNode: null };
    try {
      await ctx.savepoint(t, (sp) => insertMessages(ctx, sp, [message]), {
        owned,
        statements: insertStatements(ctx, [message]),
      });
    } catch (err) {
      if (isUniqueViolation(err)) {
        throw new MessageIdAlreadyExistsError(
          `smid '${message.smid}' of session '${message.sessionId}' is in use`,
        );
      }
      throw err;
    }
    return { sessionExists: true, currentNode: registrationOf(message.sessionId, state) };
  });
}

/**
 * Each message's outcome from its session's locked registration: stored if the session exists, `attempted` when
 * the writer holds the session here (the row is then stored already marked, see `OutboxMessageInput.attemptBy`).
 */
export function batchResults(
  ctx: StoreContext,
  messages: readonly OutboxMessageInput[],
  sessions: ReadonlyMap<string, SessionState>,
): StoreInOutboxBatchResult[] {
  const node = ctx.options.nodeName;
  return messages.map((m) => {
    const state = sessions.get(m.sessionId);
    const byWriter =
      m.attemptBy !== undefined && state?.nodename === node && state.connectionId === m.attemptBy;
    return {
      sessionExists: state !== undefined,
      currentNode: registrationOf(m.sessionId, state),
      smidInUse: false,
      attempted: byWriter,
    };
  });
}

/**
 * Batch outbox store for group commit: one shared lock read for all sessions, multi-row INSERTs inside a savepoint.
 * On an smid collision the savepoint is rolled back and the messages go in one by one, each in its own savepoint,
 * so only the colliding ones are reported (`smidInUse`) and the rest are stored.
 */
export function storeMessagesInOutbox(
  ctx: StoreContext,
  messages: readonly OutboxMessageInput[],
  trx?: Knex.Transaction,
  options: BatchWriteOptions = {},
): Promise<StoreInOutboxBatchResult[]> {
  if (messages.length === 0) return Promise.resolve([]);
  return ctx.tx('storeMessagesInOutbox', trx, async (t, owned) => {
    const sessions = await lockSessionsForShare(
      ctx,
      t,
      messages.map((m) => m.sessionId),
    );
    const attempted = new Set<OutboxMessageInput>();
    const results = batchResults(ctx, messages, sessions);
    results.forEach((r, i) => r.attempted && attempted.add(messages[i]!));
    const seen = new Set<string>();
    const toInsert: { message: OutboxMessageInput; index: number }[] = [];
    messages.forEach((message, index) => {
      if (!sessions.has(message.sessionId)) return;
      const k = `${message.sessionId}\u0000${message.smid}`;
      if (seen.has(k)) {
        results[index]!.smidInUse = true;
        results[index]!.attempted = false;
      } else {
        seen.add(k);
        toInsert.push({ message, index });
      }
    });
    if (toInsert.length === 0) return results;
    if (options.writeBehind && !owned && ctx.dialect === 'mysql') {
      // Its failure fails the caller's transaction (BatchWriteOptions.writeBehind).
      await insertMessages(
        ctx,
        t,
        toInsert.map((x) => x.message),
        attempted,
        true,
      );
      return results;
    }
    try {
      const all = toInsert.map((x) => x.message);
      await ctx.savepoint(t, (sp) => insertMessages(ctx, sp, all, attempted), {
        owned,
        statements: insertStatements(ctx, all),
        continueAfterFailure: true,
      });
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
      for (const x of toInsert) {
        try {
          await ctx.savepoint(t, (sp) => insertMessages(ctx, sp, [x.message], attempted), {
            owned,
            statements: insertStatements(ctx, [x.message]),
            continueAfterFailure: true,
          });
        } catch (e) {
          if (!isUniqueViolation(e)) throw e;
          results[x.index]!.smidInUse = true;
          results[x.index]!.attempted = false;
        }
      }
    }
    return results;
  });
}

const FETCH_COLUMNS = [
  'id',
  'session_id',
  'smid',
  'cmid',
  'trace_id',
  'type',
  'request_timestamp',
  'stored_timestamp',
  'attempt_timestamp',
  'delivery_count',
  'envelope',
  'message_text',
  'message_binary',
] as const;

function toStoredOutMessage(r: OutboxRow): StoredOutMessage {
  return {
    id: num(r.id),
    smid: r.smid,
    cmid: r.cmid,
    traceId: r.trace_id,
    type: r.type as OutboxMessageType,
    requestTs: numOrNull(r.request_timestamp),
    storedTs: num(r.stored_timestamp),
    attemptTs: numOrNull(r.attempt_timestamp),
    deliveryCount: num(r.delivery_count),
    envelope: r.envelope,
    messageText: r.message_text,
    messageBinary: r.message_binary,
  };
}

/** The forwarder's fetch: `ix_mso_fetch` equality on session, IS NULL on attempt, ordered by id. */
function fetchQuery(db: Knex, sessionId: string, max: number): Knex.QueryBuilder {
  return db(T.outbox)
    .select(...FETCH_COLUMNS)
    .where('session_id', sessionId)
    .whereNull('attempt_timestamp')
    .orderBy('id')
    .limit(max);
}

export function getMessagesFromOutbox(
  ctx: StoreContext,
  sessionId: string,
  max: number,
  trx?: Knex.Transaction,
): Promise<StoredOutMessage[]> {
  return ctx.read('getMessagesFromOutbox', trx, async (db) =>
    ((await fetchQuery(db, sessionId, max)) as OutboxRow[]).map(toStoredOutMessage),
  );
}

/**
 * One statement per chunk of sessions: a window over the covering fetch index numbers each session's pending rows
 * (`ix_mso_fetch` holds session_id, attempt_timestamp and id, so a backlog costs only index entries), and only the
 * first `maxPerSession` ids per session are joined back to the table by primary key. Measured on MariaDB for 10
 * sessions: ~1 ms, against ~5 ms for ten single fetches or a UNION ALL of them (each a materialized derived table).
 */
export function getMessagesFromOutboxBatch(
  ctx: StoreContext,
  sessionIds: readonly string[],
  maxPerSession: number,
  trx?: Knex.Transaction,
): Promise<Map<string, StoredOutMessage[]>> {
  return ctx.read('getMessagesFromOutboxBatch', trx, async (db) => {
    const ids = [...new Set(sessionIds)];
    const result = new Map<string, StoredOutMessage[]>(ids.map((id) => [id, []]));
    for (const chunk of ctx.chunks(ids)) {
      const ranked = db(T.outbox)
        .select('id', db.raw('ROW_NUMBER() OVER (PARTITION BY ?? ORDER BY ??) AS rn', ['session_id', 'id']))
        .whereIn('session_id', chunk)
        .whereNull('attempt_timestamp')
        .as('r');
      const rows = (await db(`${T.outbox} as o`)
        .select(...FETCH_COLUMNS.map((c) => `o.${c}`))
        .join(ranked, 'r.id', 'o.id')
        .where('r.rn', '<=', maxPerSession)
        .orderBy('o.id')) as (OutboxRow & { session_id: string })[];
      for (const r of rows) result.get(r.session_id)!.push(toStoredOutMessage(r));
    }
    return result;
  });
}

export function outboxMessagesAttemptedDelivery(
  ctx: StoreContext,
  sessionId: string,
  smids: readonly string[],
  trx?: Knex.Transaction,
): Promise<number> {
  const now = ctx.now();
  return writeBySessionIdGroups(
    ctx,
    'outboxMessagesAttemptedDelivery',
    [{ sessionId, ids: smids }],
    trx,
    async (db, group) =>
      affected(
        await whereSessionIds(ctx.table(db, T.outbox, 'ux_mso_smid'), 'smid', group).update({
          attempt_timestamp: now,
          delivery_count: db.raw('?? + 1', ['delivery_count']),
        }),
      ),
  );
}

/**
 * Marks rows attempted by their row ids (primary key). The forwarder marks what it fetched this way, not by smid: a
 * dead letter requeued under the same smid is a new row, which a late mark of the earlier delivery must not hit.
 */
export function outboxRowsAttemptedDelivery(
  ctx: StoreContext,
  rowIds: readonly number[],
  trx?: Knex.Transaction,
): Promise<number> {
  const chunks = ctx.chunks([...new Set(rowIds)]);
  if (chunks.length === 0) return Promise.resolve(0);
  const now = ctx.now();
  return ctx.write(
    'outboxRowsAttemptedDelivery',
    trx,
    async (db) => {
      let n = 0;
      for (const ids of chunks) {
        n += affected(
          await db(T.outbox)
            .whereIn('id', ids)
            .update({ attempt_timestamp: now, delivery_count: db.raw('?? + 1', ['delivery_count']) }),
        );
      }
      return n;
    },
    chunks.length > 1,
  );
}

export function outboxMessagesUnmarkAttemptedDelivery(
  ctx: StoreContext,
  sessionId: string,
  trx?: Knex.Transaction,
): Promise<number> {
  // Touches only the outbox: dead letters live in their own table and can never come back this way (BR-2).
  return ctx.write('outboxMessagesUnmarkAttemptedDelivery', trx, async (db) =>
    affected(
      await ctx
        .table(db, T.outbox, 'ix_mso_fetch')
        .where('session_id', sessionId)
        .whereNotNull('attempt_timestamp')
        .update({ attempt_timestamp: null }),
    ),
  );
}

/** Outbox rows by (session, smid), for `deleteBySessionIds`. */
export const OUTBOX_BY_SMID = { table: T.outbox, idColumn: 'smid', index: 'ux_mso_smid' } as const;

export function outboxMessagesCompleteBatch(
  ctx: StoreContext,
  entries: readonly SessionIds[],
  trx?: Knex.Transaction,
): Promise<number> {
  return deleteBySessionIds(ctx, 'outboxMessagesComplete', OUTBOX_BY_SMID, entries, trx);
}

export function hasPendingOutbox(
  ctx: StoreContext,
  sessionIds: readonly string[],
  olderThanTs: number,
  trx?: Knex.Transaction,
): Promise<string[]> {
  return ctx.read('hasPendingOutbox', trx, async (db) => {
    const found: string[] = [];
    for (const ids of ctx.chunks([...new Set(sessionIds)])) {
      const rows = (await db(T.outbox)
        .distinct('session_id')
        .whereIn('session_id', ids)
        .whereNull('attempt_timestamp')
        .where('stored_timestamp', '<', olderThanTs)) as { session_id: string }[];
      for (const r of rows) found.push(r.session_id);
    }
    return found;
  });
}

export function getOutboxDepths(
  ctx: StoreContext,
  sessionIds: readonly string[],
  trx?: Knex.Transaction,
): Promise<Map<string, number>> {
  return ctx.read('getOutboxDepths', trx, async (db) => {
    const depths = new Map<string, number>();
    for (const ids of ctx.chunks([...new Set(sessionIds)])) {
      const rows: { session_id: string; n: number | string }[] = await db(T.outbox)
        .select('session_id')
        .count({ n: '*' })
        .whereIn('session_id', ids)
        .groupBy('session_id');
      for (const r of rows) depths.set(r.session_id, Number(r.n));
    }
    return depths;
  });
}
