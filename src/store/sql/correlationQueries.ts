import type { Knex } from 'knex';
import { MessageIdAlreadyExistsError } from '../../errors.ts';
import { isUniqueViolation } from '../sqlErrors.ts';
import type { ExpiredCorrelation, RequestCorrelation, RequestCorrelationInput } from '../storeTypes.ts';
import { lockSessionForShare } from './sessionQueries.ts';
import { affected, num, T, type StoreContext } from './StoreContext.ts';

interface CorrelationRow {
  session_id: string;
  smid: string;
  request_timestamp: number | string;
  expires_timestamp: number | string;
  reply_terminator_id: string;
  client_endpoint_id: string;
  trace_id: string;
  correlation_text: string | null;
  correlation_binary: Uint8Array | null;
}

/** The table row of a correlation. */
export function correlationRow(c: RequestCorrelationInput): CorrelationRow {
  return {
    session_id: c.sessionId,
    smid: c.smid,
    request_timestamp: c.requestTs,
    expires_timestamp: c.expiresTs,
    reply_terminator_id: c.replyTerminatorId,
    client_endpoint_id: c.clientEndpointId,
    trace_id: c.traceId,
    correlation_text: c.correlationText ?? null,
    correlation_binary: c.correlationBinary ?? null,
  };
}

export function storeRequestCorrelation(
  ctx: StoreContext,
  c: RequestCorrelationInput,
  trx?: Knex.Transaction,
): Promise<boolean> {
  return ctx.tx('storeRequestCorrelation', trx, async (t, owned) => {
    if (!(await lockSessionForShare(ctx, t, c.sessionId))) return false;
    try {
      await ctx.savepoint(t, (sp) => sp(T.requestOut).insert(correlationRow(c)), { owned, statements: 1 });
    } catch (err) {
      if (isUniqueViolation(err)) {
        throw new MessageIdAlreadyExistsError(`correlation for smid '${c.smid}' of '${c.sessionId}' exists`);
      }
      throw err;
    }
    return true;
  });
}

/**
 * SELECT, then DELETE; the row is returned only if this DELETE removed it. Of racing callers (client reply vs.
 * timeout sweep, duplicate reply on another node) the one whose DELETE commits first wins; the others' DELETE
 * waits for its row lock, then affects nothing, so they get null.
 */
export function getAndDeleteRequestCorrelation(
  ctx: StoreContext,
  sessionId: string,
  smid: string,
  trx?: Knex.Transaction,
): Promise<RequestCorrelation | null> {
  return ctx.tx('getAndDeleteRequestCorrelation', trx, async (t) => {
    const row = await t(T.requestOut)
      .select('*')
      .where({ session_id: sessionId, smid })
      .first<CorrelationRow | undefined>();
    if (!row) return null;
    const n = affected(await t(T.requestOut).where({ session_id: sessionId, smid }).delete());
    if (n !== 1) return null;
    return {
      sessionId: row.session_id,
      smid: row.smid,
      requestTs: num(row.request_timestamp),
      expiresTs: num(row.expires_timestamp),
      replyTerminatorId: row.reply_terminator_id,
      clientEndpointId: row.client_endpoint_id,
      traceId: row.trace_id,
      correlationText: row.correlation_text,
      correlationBinary: row.correlation_binary,
    };
  });
}

export function getExpiredRequestCorrelations(
  ctx: StoreContext,
  nowTs: number,
  limit: number,
  trx?: Knex.Transaction,
): Promise<ExpiredCorrelation[]> {
  return ctx.read('getExpiredRequestCorrelations', trx, async (db) => {
    const rows = (await db(T.requestOut)
      .select('session_id', 'smid', 'expires_timestamp')
      .where('expires_timestamp', '<', nowTs)
      .orderBy('expires_timestamp')
      .limit(limit)) as Pick<CorrelationRow, 'session_id' | 'smid' | 'expires_timestamp'>[];
    return rows.map((r) => ({ sessionId: r.session_id, smid: r.smid, expiresTs: num(r.expires_timestamp) }));
  });
}
