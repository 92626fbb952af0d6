import type { Knex } from 'knex';
import { isUniqueViolation } from '../sqlErrors.ts';
import type {
  DeadLetter,
  DeadLetterFilter,
  DeadLetterPurge,
  DeadLetterReason,
  DeadLetterSummary,
  OutboxMessageType,
  RequeueResult,
} from '../storeTypes.ts';
import { lockSessionForShare, registrationOf } from './sessionQueries.ts';
import { affected, num, numOrNull, T, type StoreContext } from './StoreContext.ts';

const DEFAULT_LIST_LIMIT = 100;

const SUMMARY_COLUMNS = [
  'id',
  'session_id',
  'smid',
  'user_id',
  'cmid',
  'type',
  'trace_id',
  'delivery_count',
  'reason',
  'description',
  'original_stored_timestamp',
  'last_attempt_timestamp',
  'dead_lettered_timestamp',
  'dead_lettered_by_node',
] as const;

/** The DLQ columns filled from the outbox by the dead-letter move, in INSERT order. */
const MOVE_COLUMNS = [
  'session_id',
  'smid',
  'user_id',
  'cmid',
  'type',
  'trace_id',
  'envelope',
  'message_text',
  'message_binary',
  'delivery_count',
  'last_attempt_timestamp',
  'original_stored_timestamp',
  'reason',
  'description',
  'dead_lettered_timestamp',
  'dead_lettered_by_node',
] as const;

interface DlqRow {
  id: number | string;
  session_id: string;
  smid: string;
  user_id: string | null;
  cmid: string | null;
  type: string;
  trace_id: string;
  delivery_count: number | string;
  reason: string;
  description: string | null;
  original_stored_timestamp: number | string;
  last_attempt_timestamp: number | string | null;
  dead_lettered_timestamp: number | string;
  dead_lettered_by_node: string;
  envelope?: string;
  message_text?: string | null;
  message_binary?: Uint8Array | null;
}

function toSummary(r: DlqRow): DeadLetterSummary {
  return {
    id: num(r.id),
    sessionId: r.session_id,
    smid: r.smid,
    userId: r.user_id,
    cmid: r.cmid,
    type: r.type as OutboxMessageType,
    traceId: r.trace_id,
    deliveryCount: num(r.delivery_count),
    reason: r.reason as DeadLetterReason,
    description: r.description,
    originalStoredTs: num(r.original_stored_timestamp),
    lastAttemptTs: numOrNull(r.last_attempt_timestamp),
    deadLetteredTs: num(r.dead_lettered_timestamp),
    deadLetteredByNode: r.dead_lettered_by_node,
  };
}

/** A bound BIGINT in a SELECT list: PostgreSQL would type an untyped parameter there as text. */
function bigintParam(ctx: StoreContext, db: Knex, value: number): Knex.Raw {
  const type = ctx.dialect === 'mysql' ? 'SIGNED' : ctx.dialect === 'postgres' ? 'BIGINT' : 'INTEGER';
  return db.raw(`CAST(? AS ${type})`, [value]);
}

/**
 * The delivery count and last attempt time a dead letter keeps. A client NACK proves that the client got the message,
 * but the forwarder marks its writes attempted in batches (`storeBatchWindowMs` later), and a NACK answered at once
 * usually overtakes that mark: the row still says "never attempted" (or, after a resume's unmark, not since). Then the
 * NACK counts as that delivery, at the NACK's time; the late mark finds no row and changes nothing.
 */
function deliveryColumns(ctx: StoreContext, db: Knex, reason: DeadLetterReason, now: number): Knex.Raw[] {
  if (reason !== 'client_nack')
    return [db.raw('??', ['o.delivery_count']), db.raw('??', ['o.attempt_timestamp'])];
  return [
    db.raw('CASE WHEN ?? IS NULL THEN ?? + 1 ELSE ?? END', [
      'o.attempt_timestamp',
      'o.delivery_count',
      'o.delivery_count',
    ]),
    db.raw('COALESCE(??, ?)', ['o.attempt_timestamp', bigintParam(ctx, db, now)]),
  ];
}

/**
 * Moves outbox rows to the DLQ in one transaction (BR-2): lock them, `INSERT INTO dlq … SELECT … FROM outbox LEFT
 * JOIN session` (the bodies never pass through this process), then DELETE them from the outbox.
 */
export function outboxMessagesDeadLetter(
  ctx: StoreContext,
  sessionId: string,
  smids: readonly string[],
  reason: DeadLetterReason,
  description: string | null | undefined,
  trx?: Knex.Transaction,
): Promise<string[]> {
  if (smids.length === 0) return Promise.resolve([]);
  return ctx.tx('outboxMessagesDeadLetter', trx, async (t) => {
    const moved: string[] = [];
    const now = ctx.now();
    for (const ids of ctx.chunks([...new Set(smids)])) {
      const present = (
        (await ctx.forUpdate(
          ctx
            .table(t, T.outbox, 'ux_mso_smid')
            .select('smid')
            .where('session_id', sessionId)
            .whereIn('smid', ids)
            .orderBy('id'),
        )) as { smid: string }[]
      ).map((r) => r.smid);
      if (present.length === 0) continue;
      const select = t
        .select(
          'o.session_id',
          'o.smid',
          's.user_id',
          'o.cmid',
          'o.type',
          'o.trace_id',
          'o.envelope',
          'o.message_text',
          'o.message_binary',
          ...deliveryColumns(ctx, t, reason, now),
          'o.stored_timestamp',
          t.raw('?', [reason]),
          t.raw('?', [description ?? null]),
          bigintParam(ctx, t, now),
          t.raw('?', [ctx.options.nodeName]),
        )
        .from(`${T.outbox} as o`)
        .leftJoin(`${T.session} as s`, 's.session_id', 'o.session_id')
        .where('o.session_id', sessionId)
        .whereIn('o.smid', present)
        .orderBy('o.id');
      await t
        .into(t.raw(`?? (${MOVE_COLUMNS.map(() => '??').join(', ')})`, [T.dlq, ...MOVE_COLUMNS]))
        .insert(select);
      await ctx.deleteWithIndex(
        t,
        t(T.outbox).where('session_id', sessionId).whereIn('smid', present),
        T.outbox,
        'ux_mso_smid',
      );
      moved.push(...present);
    }
    return moved;
  });
}

function applyFilter(qb: Knex.QueryBuilder, filter: DeadLetterFilter): Knex.QueryBuilder {
  if (filter.sessionId !== undefined) qb.where('session_id', filter.sessionId);
  if (filter.userId !== undefined) qb.where('user_id', filter.userId);
  if (filter.fromTs !== undefined) qb.where('dead_lettered_timestamp', '>=', filter.fromTs);
  if (filter.toTs !== undefined) qb.where('dead_lettered_timestamp', '<', filter.toTs);
  if (filter.afterId !== undefined) qb.where('id', '>', filter.afterId);
  if (filter.beforeId !== undefined) qb.where('id', '<', filter.beforeId);
  return qb;
}

export function listDeadLetters(
  ctx: StoreContext,
  filter: DeadLetterFilter = {},
  trx?: Knex.Transaction,
): Promise<DeadLetterSummary[]> {
  return ctx.read('listDeadLetters', trx, async (db) => {
    const qb = applyFilter(db(T.dlq).select(...SUMMARY_COLUMNS), filter);
    const rows = (await qb
      .orderBy('id', filter.newestFirst ? 'desc' : 'asc')
      .limit(filter.limit ?? DEFAULT_LIST_LIMIT)) as DlqRow[];
    return rows.map(toSummary);
  });
}

export function countDeadLetters(
  ctx: StoreContext,
  filter: DeadLetterFilter = {},
  trx?: Knex.Transaction,
): Promise<number> {
  return ctx.read('countDeadLetters', trx, async (db) => {
    const row = (await applyFilter(db(T.dlq).count({ n: '*' }), filter).first()) as
      { n: unknown } | undefined;
    return num(row?.n ?? 0);
  });
}

export function getDeadLetter(
  ctx: StoreContext,
  id: number,
  trx?: Knex.Transaction,
): Promise<DeadLetter | null> {
  return ctx.read('getDeadLetter', trx, async (db) => {
    const r = await db(T.dlq).select('*').where('id', id).first<DlqRow | undefined>();
    if (!r) return null;
    return {
      ...toSummary(r),
      envelope: r.envelope ?? '',
      messageText: r.message_text ?? null,
      messageBinary: r.message_binary ?? null,
    };
  });
}

export function requeueDeadLetter(
  ctx: StoreContext,
  id: number,
  trx?: Knex.Transaction,
): Promise<RequeueResult> {
  return ctx.tx('requeueDeadLetter', trx, async (t, owned) => {
    const r = await ctx.forUpdate(t(T.dlq).select('*').where('id', id)).first<DlqRow | undefined>();
    if (!r) return { ok: false, reason: 'NOT_FOUND' };
    const state = await lockSessionForShare(ctx, t, r.session_id);
    if (!state) return { ok: false, reason: 'SESSION_GONE' };
    try {
      // Same smid (a request correlation is keyed by it), new id: appended to the session's delivery order.
      await ctx.savepoint(
        t,
        (sp) =>
          sp(T.outbox).insert({
            session_id: r.session_id,
            smid: r.smid,
            cmid: r.cmid,
            trace_id: r.trace_id,
            type: r.type,
            request_timestamp: null,
            stored_timestamp: ctx.now(),
            attempt_timestamp: null,
            delivery_count: 0,
            envelope: r.envelope ?? '',
            message_text: r.message_text ?? null,
            message_binary: r.message_binary ?? null,
          }),
        { owned, statements: 1, continueAfterFailure: true },
      );
    } catch (err) {
      if (isUniqueViolation(err)) return { ok: false, reason: 'SMID_IN_USE' };
      throw err;
    }
    await t(T.dlq).where('id', id).delete();
    return { ok: true, currentNode: registrationOf(r.session_id, state) };
  });
}

export async function purgeDeadLetters(
  ctx: StoreContext,
  purge: DeadLetterPurge,
  trx?: Knex.Transaction,
): Promise<number> {
  if ('ids' in purge) {
    const chunks = ctx.chunks([...new Set(purge.ids)]);
    if (chunks.length === 0) return 0;
    return ctx.write(
      'purgeDeadLetters',
      trx,
      async (db) => {
        let n = 0;
        for (const ids of chunks) n += affected(await db(T.dlq).whereIn('id', ids).delete());
        return n;
      },
      chunks.length > 1,
    );
  }
  // By time: in batches of ids, so a large purge never holds one huge transaction.
  let total = 0;
  for (;;) {
    const ids = await ctx.read('purgeDeadLetters (select)', trx, async (db) => {
      const qb = db(T.dlq).select('id').where('dead_lettered_timestamp', '<', purge.olderThanTs);
      if (purge.sessionId !== undefined) qb.where('session_id', purge.sessionId);
      return ((await qb.orderBy('id').limit(ctx.options.inClauseChunk)) as { id: number | string }[]).map(
        (r) => num(r.id),
      );
    });
    if (ids.length === 0) break;
    total += await ctx.write('purgeDeadLetters', trx, async (db) =>
      affected(await db(T.dlq).whereIn('id', ids).delete()),
    );
    if (ids.length < ctx.options.inClauseChunk) break;
  }
  return total;
}
