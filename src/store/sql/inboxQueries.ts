import type { Knex } from 'knex';
import { MessageIdAlreadyExistsError, SessionNotFoundError } from '../../errors.ts';
import { writeBehind } from '../mysqlStatementFolding.ts';
import { isUniqueViolation } from '../sqlErrors.ts';
import type {
  BatchWriteOptions,
  InboxEntry,
  InboxInsertOutcome,
  MessageRef,
  SessionIds,
} from '../storeTypes.ts';
import { lockSessionForShare, lockSessionsForShare } from './sessionQueries.ts';
import { deleteBySessionIds, groupChunks, whereSessionIds } from './sessionIdGroups.ts';
import { affected, num, T, type StoreContext } from './StoreContext.ts';

interface InboxRow {
  stored_timestamp: number | string;
  full_envelope: string | null;
  message_binary: Uint8Array | null;
}

const key = (sessionId: string, id: string): string => `${sessionId}\u0000${id}`;

export function storeMessageIdInInbox(
  ctx: StoreContext,
  sessionId: string,
  cmid: string,
  trx?: Knex.Transaction,
): Promise<void> {
  return ctx.tx('storeMessageIdInInbox', trx, async (t, owned) => {
    if (!(await lockSessionForShare(ctx, t, sessionId))) {
      throw new SessionNotFoundError(`session '${sessionId}' does not exist`);
    }
    try {
      await ctx.savepoint(
        t,
        (sp) => sp(T.inbox).insert({ session_id: sessionId, cmid, stored_timestamp: ctx.now() }),
        {
          owned,
          statements: 1,
        },
      );
    } catch (err) {
      if (isUniqueViolation(err)) {
        throw new MessageIdAlreadyExistsError(
          `cmid '${cmid}' of session '${sessionId}' is already in the inbox`,
        );
      }
      throw err;
    }
  });
}

/**
 * Batch inbox insert. Duplicates are rare (a client's resend after a reconnect), so the ids go straight in: on
 * PostgreSQL as `ON CONFLICT DO NOTHING RETURNING`, which names what went in; on MySQL/MariaDB and SQLite as one
 * plain multi-row INSERT, whose unique violation rolls back only itself. Only then (or for a batch of several
 * statements) the slow path runs: {@link insertAfterRead}. Saves the read of every batch, a round trip per commit.
 */
export function storeMessageIdsInInbox(
  ctx: StoreContext,
  items: readonly MessageRef[],
  trx?: Knex.Transaction,
  options: BatchWriteOptions = {},
): Promise<InboxInsertOutcome[]> {
  if (items.length === 0) return Promise.resolve([]);
  return ctx.tx('storeMessageIdsInInbox', trx, async (t, owned) => {
    const sessions = await lockSessionsForShare(
      ctx,
      t,
      items.map((i) => i.sessionId),
    );
    const outcomes: InboxInsertOutcome[] = new Array<InboxInsertOutcome>(items.length).fill('SESSION_GONE');
    const live: Candidate[] = [];
    const seen = new Set<string>();
    items.forEach((item, index) => {
      if (!sessions.has(item.sessionId)) return;
      const k = key(item.sessionId, item.cmid);
      if (seen.has(k)) outcomes[index] = 'DUPLICATE';
      else {
        seen.add(k);
        live.push({ item, index });
      }
    });
    if (live.length === 0) return outcomes;
    const now = ctx.now();
    if (ctx.dialect === 'postgres') {
      for (const part of ctx.chunks(live)) {
        const inserted = await t(T.inbox)
          .insert(part.map((x) => inboxRow(x.item, now)))
          .onConflict(['session_id', 'cmid'])
          .ignore()
          .returning<{ session_id: string; cmid: string }[]>(['session_id', 'cmid']);
        const stored = new Set(inserted.map((r) => key(r.session_id, r.cmid)));
        for (const x of part) {
          outcomes[x.index] = stored.has(key(x.item.sessionId, x.item.cmid)) ? 'STORED' : 'DUPLICATE';
        }
      }
      return outcomes;
    }
    if (
      options.writeBehind &&
      !owned &&
      ctx.dialect === 'mysql' &&
      live.length <= ctx.options.inClauseChunk
    ) {
      // A duplicate fails the caller's transaction (BatchWriteOptions.writeBehind).
      await writeBehind(t(T.inbox).insert(live.map((x) => inboxRow(x.item, now))));
      for (const x of live) outcomes[x.index] = 'STORED';
      return outcomes;
    }
    if (live.length <= ctx.options.inClauseChunk) {
      try {
        await t(T.inbox).insert(live.map((x) => inboxRow(x.item, now)));
        for (const x of live) outcomes[x.index] = 'STORED';
        return outcomes;
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
      }
    }
    await insertAfterRead(ctx, t, owned, live, outcomes, now);
    return outcomes;
  });
}

interface Candidate {
  item: MessageRef;
  index: number;
}

function inboxRow(m: MessageRef, now: number): Record<string, unknown> {
  return { session_id: m.sessionId, cmid: m.cmid, stored_timestamp: now };
}

/**
 * The slow path of {@link storeMessageIdsInInbox}: existing ids are found with one read; the rest go in as
 * multi-row INSERTs inside a savepoint. If a concurrent transaction inserted one of them meanwhile (unique
 * violation), the savepoint is rolled back and the items are inserted one by one, each in its own savepoint, so
 * duplicates are reported per item.
 */
async function insertAfterRead(
  ctx: StoreContext,
  t: Knex.Transaction,
  owned: boolean,
  live: readonly Candidate[],
  outcomes: InboxInsertOutcome[],
  now: number,
): Promise<void> {
  const existing = new Set<string>();
  const entries = live.map((x) => ({ sessionId: x.item.sessionId, ids: [x.item.cmid] }));
  for (const group of groupChunks(entries, ctx.options.inClauseChunk)) {
    const rows = (await whereSessionIds(t(T.inbox).select('session_id', 'cmid'), 'cmid', group)) as {
      session_id: string;
      cmid: string;
    }[];
    for (const r of rows) existing.add(key(r.session_id, r.cmid));
  }
  const toInsert: Candidate[] = [];
  for (const x of live) {
    if (existing.has(key(x.item.sessionId, x.item.cmid))) outcomes[x.index] = 'DUPLICATE';
    else toInsert.push(x);
  }
  if (toInsert.length === 0) return;
  const parts = ctx.chunks(toInsert);
  try {
    await ctx.savepoint(
      t,
      async (sp) => {
        for (const part of parts) await sp(T.inbox).insert(part.map((x) => inboxRow(x.item, now)));
      },
      { owned, statements: parts.length, continueAfterFailure: true },
    );
    for (const x of toInsert) outcomes[x.index] = 'STORED';
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
    for (const x of toInsert) {
      try {
        await ctx.savepoint(t, (sp) => sp(T.inbox).insert(inboxRow(x.item, now)), {
          owned,
          statements: 1,
          continueAfterFailure: true,
        });
        outcomes[x.index] = 'STORED';
      } catch (e) {
        if (!isUniqueViolation(e)) throw e;
        outcomes[x.index] = 'DUPLICATE';
      }
    }
  }
}

export function updateMessageInInbox(
  ctx: StoreContext,
  sessionId: string,
  cmid: string,
  fullEnvelope: string,
  binary: Uint8Array | null | undefined,
  trx?: Knex.Transaction,
): Promise<boolean> {
  // No session lock needed: this only updates an existing row, which a close deletes (it cannot create orphans).
  return ctx.write('updateMessageInInbox', trx, async (db) => {
    const n = await db(T.inbox)
      .where({ session_id: sessionId, cmid })
      .update({ full_envelope: fullEnvelope, message_binary: binary ?? null });
    return affected(n) === 1;
  });
}

export function getMessageFromInbox(
  ctx: StoreContext,
  sessionId: string,
  cmid: string,
  trx?: Knex.Transaction,
): Promise<InboxEntry | null> {
  return ctx.read('getMessageFromInbox', trx, async (db) => {
    const row = await db(T.inbox)
      .select('stored_timestamp', 'full_envelope', 'message_binary')
      .where({ session_id: sessionId, cmid })
      .first<InboxRow | undefined>();
    if (!row) return null;
    const entry: InboxEntry = { storedTs: num(row.stored_timestamp) };
    if (row.full_envelope !== null) entry.fullEnvelope = row.full_envelope;
    if (row.message_binary !== null) entry.binary = row.message_binary;
    return entry;
  });
}

/** Inbox rows by (session, cmid), for `deleteBySessionIds`. */
export const INBOX_BY_CMID = { table: T.inbox, idColumn: 'cmid', index: 'PRIMARY' } as const;

export function deleteMessageIdsFromInboxBatch(
  ctx: StoreContext,
  entries: readonly SessionIds[],
  trx?: Knex.Transaction,
): Promise<number> {
  return deleteBySessionIds(ctx, 'deleteMessageIdsFromInbox', INBOX_BY_CMID, entries, trx);
}
