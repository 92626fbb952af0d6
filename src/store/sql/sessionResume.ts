import type { Knex } from 'knex';
import type { ResumeOutcome, SessionRegistrationInput, StoredOutMessage } from '../storeTypes.ts';
import { getMessagesFromOutboxBatch } from './outboxQueries.ts';
import { num, T, type StoreContext } from './StoreContext.ts';

/** `clv` is truncated for storage (`docs/protocol.md` 8.1). */
const CLIENT_LIB_MAX = 1024;

interface LockedRow {
  session_id: string;
  user_id: string;
  nodename: string | null;
  connection_id: string | null;
  created_timestamp: number | string;
}

/**
 * Resumes many sessions (HELLO with `sid`) in ONE transaction: a reconnect storm then costs a handful of
 * statements and one commit per batch instead of a count, a locked re-registration and an outbox unmark (two
 * commits) per session. Per item, in order, exactly what the single-session path does:
 * - the session row is locked (`FOR UPDATE`, every row of the batch in one statement, in id order) — missing →
 *   `notFound`; another user → `wrongUser` (nothing changed);
 * - the user's other sessions are counted; `maxSessionsPerUser` or more → `tooMany` (nothing changed);
 * - the row is re-registered to this node and the connection (UPDATE, never DELETE+INSERT), and the session's
 *   attempted outbox rows are unmarked so they are delivered again.
 * The same session twice in a batch is resumed twice in order (the second replaces the first).
 *
 * With `fetchOutbox`, the resumed sessions' outbox (up to that many rows each, as the forwarder fetches) is read in
 * the same transaction and returned with each outcome, so the first forward round after the resume needs no
 * statement of its own.
 *
 * Unmarking in the registration's transaction is safe against the previous connection's forwarder: its
 * attempted-marks are guarded by the registration under the session's share lock, so after this commit they are
 * skipped. (A local takeover still waits for the local forward round instead; see the HELLO handler.)
 */
export function registerResumedSessions(
  ctx: StoreContext,
  items: readonly SessionRegistrationInput[],
  maxSessionsPerUser: number,
  fetchOutbox?: number,
): Promise<ResumeOutcome[]> {
  if (items.length === 0) return Promise.resolve([]);
  return ctx.tx('registerResumedSessions', undefined, async (t) => {
    const ids = [...new Set(items.map((i) => i.sessionId))].sort();
    const rows = new Map<string, LockedRow>();
    for (const chunk of ctx.chunks(ids)) {
      const locked = (await ctx.forUpdate(
        ctx
          .table(t, T.session, 'PRIMARY')
          .select('session_id', 'user_id', 'nodename', 'connection_id', 'created_timestamp')
          .whereIn('session_id', chunk)
          .orderBy('session_id'),
      )) as LockedRow[];
      for (const r of locked) rows.set(r.session_id, r);
    }
    const users = [...new Set([...rows.values()].map((r) => r.user_id))].sort();
    const counts = new Map<string, number>();
    for (const chunk of ctx.chunks(users)) {
      const counted: { user_id: string; n: unknown }[] = await t(T.session)
        .select('user_id')
        .count({ n: '*' })
        .whereIn('user_id', chunk)
        .groupBy('user_id');
      for (const c of counted) counts.set(c.user_id, num(c.n));
    }
    const now = ctx.now();
    const outcomes: ResumeOutcome[] = [];
    const resumed = new Map<string, SessionRegistrationInput>();
    for (const item of items) {
      const row = rows.get(item.sessionId);
      if (!row) outcomes.push({ kind: 'notFound' });
      else if (row.user_id !== item.userId) outcomes.push({ kind: 'wrongUser' });
      // The user's sessions other than this one (its row exists and is the user's).
      else if ((counts.get(row.user_id) ?? 1) - 1 >= maxSessionsPerUser) outcomes.push({ kind: 'tooMany' });
      else {
        outcomes.push({
          kind: 'resumed',
          createdTs: num(row.created_timestamp),
          previous:
            row.nodename && row.connection_id
              ? { nodename: row.nodename, connectionId: row.connection_id }
              : null,
        });
        // A later HELLO of the same session in this batch replaces this registration.
        row.nodename = ctx.options.nodeName;
        row.connection_id = item.connectionId;
        resumed.set(item.sessionId, item);
      }
    }
    await updateRegistrations(ctx, t, [...resumed.values()], now);
    for (const chunk of ctx.chunks([...resumed.keys()].sort())) {
      await ctx
        .table(t, T.outbox, 'ix_mso_fetch')
        .whereIn('session_id', chunk)
        .whereNotNull('attempt_timestamp')
        .update({ attempt_timestamp: null });
    }
    if (fetchOutbox !== undefined && resumed.size > 0) {
      const pending: Map<string, StoredOutMessage[]> = await getMessagesFromOutboxBatch(
        ctx,
        [...resumed.keys()],
        fetchOutbox,
        t,
      );
      for (const o of outcomes) if (o.kind === 'resumed') o.outbox = [];
      // Each resumed session's rows go with its last outcome in the batch (the registration that stands).
      const last = new Map<string, number>();
      items.forEach((item, i) => {
        if (outcomes[i]!.kind === 'resumed') last.set(item.sessionId, i);
      });
      for (const [sessionId, i] of last) {
        const o = outcomes[i]!;
        if (o.kind === 'resumed') o.outbox = pending.get(sessionId) ?? [];
      }
    }
    return outcomes;
  });
}

/** One UPDATE per chunk: the per-session values go in `CASE session_id WHEN … THEN … END` expressions. */
async function updateRegistrations(
  ctx: StoreContext,
  t: Knex.Transaction,
  items: readonly SessionRegistrationInput[],
  now: number,
): Promise<void> {
  const sorted = [...items].sort((a, b) =>
    a.sessionId < b.sessionId ? -1 : a.sessionId > b.sessionId ? 1 : 0,
  );
  // Five bindings per session and column set; keep well below every driver's bind limit.
  for (const chunk of ctx.chunks(sorted)) {
    const caseOf = (value: (i: SessionRegistrationInput) => string): Knex.Raw =>
      t.raw(`CASE ?? ${chunk.map(() => 'WHEN ? THEN ?').join(' ')} END`, [
        'session_id',
        ...chunk.flatMap((i) => [i.sessionId, value(i)]),
      ]);
    await ctx
      .table(t, T.session, 'PRIMARY')
      .whereIn(
        'session_id',
        chunk.map((i) => i.sessionId),
      )
      .update({
        nodename: ctx.options.nodeName,
        connection_id: caseOf((i) => i.connectionId),
        client_lib: caseOf((i) => i.clientLib.slice(0, CLIENT_LIB_MAX)),
        app_name: caseOf((i) => i.appName),
        app_version: caseOf((i) => i.appVersion),
        liveliness_timestamp: now,
      });
  }
}
