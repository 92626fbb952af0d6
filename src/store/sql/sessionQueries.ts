import type { Knex } from 'knex';
import { MessageIdAlreadyExistsError, SessionNotFoundError, WrongUserError } from '../../errors.ts';
import { isUniqueViolation } from '../sqlErrors.ts';
import type {
  ResumedSession,
  SessionFilter,
  SessionInfo,
  SessionRegistration,
  SessionRegistrationInput,
  SessionState,
} from '../storeTypes.ts';
import { affected, num, T, type StoreContext } from './StoreContext.ts';

/** `clv` is truncated for storage (`docs/protocol.md` 8.1). */
const CLIENT_LIB_MAX = 1024;
const DEFAULT_SESSIONS_LIMIT = 1000;

interface SessionRow {
  session_id: string;
  connection_id: string | null;
  nodename: string | null;
  user_id: string;
  client_lib: string;
  app_name: string;
  app_version: string;
  created_timestamp: number | string;
  liveliness_timestamp: number | string;
}

/**
 * Shared lock on one session row (a plain read on SQLite). Every box/correlation write calls this (or
 * {@link lockSessionsForShare}) first, in the same transaction: a close either waits for the writer's commit and
 * then deletes what it wrote, or wins and the writer sees no row and writes nothing (`docs/store.md` 6).
 */
export async function lockSessionForShare(
  ctx: StoreContext,
  trx: Knex.Transaction,
  sessionId: string,
): Promise<SessionState | null> {
  const row = await ctx
    .forShare(trx(T.session).select('nodename', 'connection_id').where('session_id', sessionId))
    .first<Pick<SessionRow, 'nodename' | 'connection_id'> | undefined>();
  return row ? { nodename: row.nodename, connectionId: row.connection_id } : null;
}

/** {@link lockSessionForShare} for many sessions (chunked IN-lists). Missing sessions are absent from the map. */
export async function lockSessionsForShare(
  ctx: StoreContext,
  trx: Knex.Transaction,
  sessionIds: readonly string[],
): Promise<Map<string, SessionState>> {
  const states = new Map<string, SessionState>();
  // Sorted, so concurrent batch lockers and the timeout job take row locks in the same order.
  for (const ids of ctx.chunks([...new Set(sessionIds)].sort())) {
    const rows = (await ctx.forShare(
      ctx
        .table(trx, T.session, 'PRIMARY')
        .select('session_id', 'nodename', 'connection_id')
        .whereIn('session_id', ids),
    )) as Pick<SessionRow, 'session_id' | 'nodename' | 'connection_id'>[];
    for (const r of rows) {
      states.set(r.session_id, { nodename: r.nodename, connectionId: r.connection_id });
    }
  }
  return states;
}

/** The registration to poke, from a lock result: null when the session is deregistered. */
export function registrationOf(
  sessionId: string,
  state: SessionState | null | undefined,
): SessionRegistration | null {
  if (!state?.nodename || !state.connectionId) return null;
  return { sessionId, nodename: state.nodename, connectionId: state.connectionId };
}

export function registerNewSession(
  ctx: StoreContext,
  s: SessionRegistrationInput,
  trx?: Knex.Transaction,
): Promise<number> {
  return ctx.tx('registerNewSession', trx, async (t, owned) => {
    const now = ctx.now();
    try {
      await ctx.savepoint(
        t,
        (sp) =>
          sp(T.session).insert({
            session_id: s.sessionId,
            connection_id: s.connectionId,
            nodename: ctx.options.nodeName,
            user_id: s.userId,
            client_lib: s.clientLib.slice(0, CLIENT_LIB_MAX),
            app_name: s.appName,
            app_version: s.appVersion,
            created_timestamp: now,
            liveliness_timestamp: now,
          }),
        { owned, statements: 1 },
      );
    } catch (err) {
      if (isUniqueViolation(err)) throw new MessageIdAlreadyExistsError(`session id '${s.sessionId}' exists`);
      throw err;
    }
    return now;
  });
}

export function registerResumedSession(
  ctx: StoreContext,
  s: SessionRegistrationInput,
  trx?: Knex.Transaction,
): Promise<ResumedSession> {
  return ctx.tx('registerResumedSession', trx, async (t) => {
    const row = await ctx
      .forUpdate(
        t(T.session)
          .select('user_id', 'nodename', 'connection_id', 'created_timestamp')
          .where('session_id', s.sessionId),
      )
      .first<Pick<SessionRow, 'user_id' | 'nodename' | 'connection_id' | 'created_timestamp'> | undefined>();
    if (!row) throw new SessionNotFoundError(`session '${s.sessionId}' does not exist`);
    if (row.user_id !== s.userId) {
      throw new WrongUserError(`session '${s.sessionId}' belongs to another user than '${s.userId}'`);
    }
    // UPDATE, never DELETE+INSERT: that would race with a concurrent close and could resurrect the session.
    await t(T.session)
      .where('session_id', s.sessionId)
      .update({
        nodename: ctx.options.nodeName,
        connection_id: s.connectionId,
        client_lib: s.clientLib.slice(0, CLIENT_LIB_MAX),
        app_name: s.appName,
        app_version: s.appVersion,
        liveliness_timestamp: ctx.now(),
      });
    return {
      createdTs: num(row.created_timestamp),
      previous:
        row.nodename && row.connection_id
          ? { nodename: row.nodename, connectionId: row.connection_id }
          : null,
    };
  });
}

export function getCurrentRegisteredNodeForSession(
  ctx: StoreContext,
  sessionId: string,
  trx?: Knex.Transaction,
): Promise<SessionRegistration | null> {
  return ctx.read('getCurrentRegisteredNodeForSession', trx, async (db) => {
    const row = await db(T.session)
      .select('nodename', 'connection_id')
      .where('session_id', sessionId)
      .first<Pick<SessionRow, 'nodename' | 'connection_id'> | undefined>();
    return registrationOf(
      sessionId,
      row ? { nodename: row.nodename, connectionId: row.connection_id } : null,
    );
  });
}

export function isSessionExists(
  ctx: StoreContext,
  sessionId: string,
  trx?: Knex.Transaction,
): Promise<boolean> {
  return ctx.read('isSessionExists', trx, async (db) => {
    const row: unknown = await db(T.session).select('session_id').where('session_id', sessionId).first();
    return row !== undefined;
  });
}

function applyFilter(qb: Knex.QueryBuilder, f: SessionFilter): Knex.QueryBuilder {
  if (f.onlyActive) qb.whereNotNull('nodename');
  if (f.userId !== undefined) qb.where('user_id', f.userId);
  if (f.appName !== undefined) qb.where('app_name', f.appName);
  if (f.appVersionAtOrAbove !== undefined) qb.where('app_version', '>=', f.appVersionAtOrAbove);
  if (f.excludeSessionId !== undefined) qb.whereNot('session_id', f.excludeSessionId);
  if (f.idPrefix) whereIdPrefix(qb, f.idPrefix);
  return qb;
}

/**
 * `user_id` or `session_id` starts with `prefix`. LIKE alone would differ between databases (SQLite's is
 * case-insensitive), so it only narrows (and can use an index on MySQL/MariaDB); `SUBSTR(…) = prefix` decides, with
 * the column's own comparison (binary on every dialect of this schema). SUBSTR counts characters: code points.
 */
function whereIdPrefix(qb: Knex.QueryBuilder, prefix: string): void {
  const like = `${prefix.replace(/[!%_]/g, (c) => `!${c}`)}%`;
  const length = [...prefix].length;
  qb.where((any) => {
    for (const column of ['user_id', 'session_id']) {
      any.orWhere((one) => {
        one
          .whereRaw("?? LIKE ? ESCAPE '!'", [column, like])
          .whereRaw('SUBSTR(??, 1, ?) = ?', [column, length, prefix]);
      });
    }
  });
}

export function getSessions(
  ctx: StoreContext,
  filter: SessionFilter = {},
  trx?: Knex.Transaction,
): Promise<SessionInfo[]> {
  return ctx.read('getSessions', trx, async (db) => {
    const qb = applyFilter(db(T.session).select('*'), filter);
    if (filter.afterSessionId !== undefined) qb.where('session_id', '>', filter.afterSessionId);
    const rows = (await qb
      .orderBy('session_id')
      .limit(filter.limit ?? DEFAULT_SESSIONS_LIMIT)) as SessionRow[];
    return rows.map((r) => {
      const info: SessionInfo = {
        id: r.session_id,
        uid: r.user_id,
        scts: num(r.created_timestamp),
        slts: num(r.liveliness_timestamp),
        clv: r.client_lib,
        an: r.app_name,
        av: r.app_version,
      };
      if (r.nodename !== null) info.nn = r.nodename;
      return info;
    });
  });
}

export function getSessionsCount(
  ctx: StoreContext,
  filter: SessionFilter = {},
  trx?: Knex.Transaction,
): Promise<number> {
  return ctx.read('getSessionsCount', trx, async (db) => {
    const row = (await applyFilter(db(T.session).count({ n: '*' }), filter).first()) as
      { n: unknown } | undefined;
    return num(row?.n ?? 0);
  });
}

export function deregisterSessionFromThisNode(
  ctx: StoreContext,
  sessionId: string,
  connectionId: string,
  trx?: Knex.Transaction,
): Promise<boolean> {
  return ctx.write('deregisterSessionFromThisNode', trx, async (db) => {
    // Guarded by connection id and node: a late deregistration of an old connection must not undo a newer one.
    const n = await db(T.session)
      .where({ session_id: sessionId, connection_id: connectionId, nodename: ctx.options.nodeName })
      .update({ nodename: null, connection_id: null });
    return affected(n) === 1;
  });
}

export function deregisterAllSessionsOfThisNode(ctx: StoreContext, trx?: Knex.Transaction): Promise<number> {
  return ctx.write('deregisterAllSessionsOfThisNode', trx, async (db) =>
    affected(
      await db(T.session)
        .where('nodename', ctx.options.nodeName)
        .update({ nodename: null, connection_id: null }),
    ),
  );
}

export function getSessionsRegisteredToThisNode(
  ctx: StoreContext,
  notLiveSinceTs: number,
  trx?: Knex.Transaction,
): Promise<SessionRegistration[]> {
  return ctx.read('getSessionsRegisteredToThisNode', trx, async (db) => {
    const rows = (await db(T.session)
      .select('session_id', 'connection_id', 'nodename')
      .where('nodename', ctx.options.nodeName)
      .where('liveliness_timestamp', '<', notLiveSinceTs)
      .orderBy('session_id')) as Pick<SessionRow, 'session_id' | 'connection_id' | 'nodename'>[];
    return rows.map((r) => ({
      sessionId: r.session_id,
      nodename: r.nodename ?? ctx.options.nodeName,
      connectionId: r.connection_id ?? '',
    }));
  });
}

export function closeSession(ctx: StoreContext, sessionId: string, trx?: Knex.Transaction): Promise<boolean> {
  return closeWhere(ctx, 'closeSession', sessionId, {}, trx);
}

/**
 * {@link closeSession} on behalf of a connection: only while the session is registered to this node under
 * `connectionId`. A superseded connection (its session resumed elsewhere, the takeover notice lost) ending with a
 * terminating code must not delete the session its successor holds.
 */
export function closeSessionOfConnection(
  ctx: StoreContext,
  sessionId: string,
  connectionId: string,
  trx?: Knex.Transaction,
): Promise<boolean> {
  return closeWhere(
    ctx,
    'closeSessionOfConnection',
    sessionId,
    { connection_id: connectionId, nodename: ctx.options.nodeName },
    trx,
  );
}

function closeWhere(
  ctx: StoreContext,
  operation: string,
  sessionId: string,
  guard: Record<string, string>,
  trx: Knex.Transaction | undefined,
): Promise<boolean> {
  return ctx.tx(operation, trx, async (t) => {
    // Session row first (exclusive lock): a concurrent box writer either committed before (its rows are deleted
    // below) or waits and then finds no session (`docs/store.md` 6). Correlations and dead letters are kept.
    const n = affected(
      await t(T.session)
        .where({ ...guard, session_id: sessionId })
        .delete(),
    );
    // Unguarded, remnants of an already deleted session go too; guarded, the rows belong to whoever holds it.
    if (n !== 1 && Object.keys(guard).length > 0) return false;
    await ctx.deleteWithIndex(t, t(T.inbox).where('session_id', sessionId), T.inbox, 'PRIMARY');
    await ctx.deleteWithIndex(t, t(T.outbox).where('session_id', sessionId), T.outbox, 'ux_mso_smid');
    return n === 1;
  });
}

export function notifySessionLiveliness(
  ctx: StoreContext,
  sessionIds: readonly string[],
  trx?: Knex.Transaction,
): Promise<void> {
  const chunks = ctx.chunks([...new Set(sessionIds)].sort());
  if (chunks.length === 0) return Promise.resolve();
  return ctx.write(
    'notifySessionLiveliness',
    trx,
    async (db) => {
      const now = ctx.now();
      for (const ids of chunks) {
        // Only rows this node holds: a connection superseded by a resume on another node keeps nothing alive.
        await db(T.session)
          .whereIn('session_id', ids)
          .where('nodename', ctx.options.nodeName)
          .update({ liveliness_timestamp: now });
      }
    },
    chunks.length > 1,
  );
}
