import type { Knex } from 'knex';
import { NodeNameInUseError } from '../../errors.ts';
import { isDeadLocalIncarnation } from '../nodeIncarnation.ts';
import { isUniqueViolation } from '../sqlErrors.ts';
import type { NodeInfo } from '../storeTypes.ts';
import { affected, num, T, type StoreContext } from './StoreContext.ts';

interface NodeRow {
  incarnation: string;
  liveliness_timestamp: number | string;
}

/**
 * Takes this node's name for `incarnation` (one boot of one process). The name is free when no row carries it, when
 * the row's liveliness is older than `nodeDeadAfterMs` (that node died), when the row's process was on this host and
 * runs no more (a restart right after a crash), or when it is already this incarnation's.
 * Runs before `boot()` deregisters the name's sessions: a second process started under a live node's name would
 * otherwise cut that node's clients off.
 * @throws NodeNameInUseError if a node with this name is alive.
 */
export function claimNodeName(ctx: StoreContext, incarnation: string): Promise<void> {
  const nodename = ctx.options.nodeName;
  return ctx.tx('claimNodeName', undefined, async (t) => {
    const now = ctx.now();
    const row = await ctx
      .forUpdate(t(T.node).select('incarnation', 'liveliness_timestamp').where('nodename', nodename))
      .first<NodeRow | undefined>();
    if (!row) {
      try {
        await t(T.node).insert({
          nodename,
          incarnation,
          started_timestamp: now,
          liveliness_timestamp: now,
        });
      } catch (err) {
        // Another process inserted the name between our read and insert: it is alive by definition.
        if (isUniqueViolation(err)) throw new NodeNameInUseError(nodename, now, 0);
        throw err;
      }
      return;
    }
    const lastSeen = num(row.liveliness_timestamp);
    if (
      row.incarnation !== incarnation &&
      now - lastSeen < ctx.options.nodeDeadAfterMs &&
      !isDeadLocalIncarnation(row.incarnation)
    ) {
      throw new NodeNameInUseError(nodename, lastSeen, Math.max(0, now - lastSeen));
    }
    await t(T.node)
      .where('nodename', nodename)
      .update({ incarnation, started_timestamp: now, liveliness_timestamp: now });
  });
}

/**
 * Takes one of `count` node reply queues for this node's claim (`incarnation`): the lowest that no live node holds,
 * else the one fewest live nodes hold (lowest first). Two nodes booting at the same moment can take the same one;
 * that only makes replies for their sessions go to either (they are handed over as replies from other nodes are).
 * @returns the queue's index, from 0.
 */
export function claimReplyQueue(ctx: StoreContext, incarnation: string, count: number): Promise<number> {
  const nodename = ctx.options.nodeName;
  return ctx.tx('claimReplyQueue', undefined, async (t) => {
    const liveSince = ctx.now() - ctx.options.nodeDeadAfterMs;
    const rows = (await t(T.node)
      .select('reply_queue')
      .whereNot('nodename', nodename)
      .where('liveliness_timestamp', '>', liveSince)
      .whereNotNull('reply_queue')) as { reply_queue: number | string }[];
    const holders = new Array<number>(count).fill(0);
    for (const r of rows) {
      const q = num(r.reply_queue);
      if (q >= 0 && q < count) holders[q]!++;
      else {
        // That node's replies would not be taken over by this one when it is gone.
        ctx.options.logger.warn(
          { replyQueue: q, nodeReplyQueues: count },
          "a live node holds a reply queue beyond this node's nodeReplyQueues: give every node the same nodeReplyQueues",
        );
      }
    }
    const chosen = holders.indexOf(Math.min(...holders));
    const n = await t(T.node).where({ nodename, incarnation }).update({ reply_queue: chosen });
    if (affected(n) !== 1) throw new Error(`node name '${nodename}' is no longer claimed by this process`);
    return chosen;
  });
}

/**
 * Refreshes the liveliness of this node's row, if `incarnation` still holds the name. @returns false when it does
 * not (the row is gone, or another process took the name after this one looked dead).
 */
export function notifyNodeLiveliness(ctx: StoreContext, incarnation: string): Promise<boolean> {
  return ctx.write('notifyNodeLiveliness', undefined, async (db) => {
    const n = await db(T.node)
      .where({ nodename: ctx.options.nodeName, incarnation })
      .update({ liveliness_timestamp: ctx.now() });
    return affected(n) === 1;
  });
}

/** Whether `db` sees this node's claim of its name by `incarnation` (the same database as the store's). */
export async function seesNodeClaim(ctx: StoreContext, db: Knex, incarnation: string): Promise<boolean> {
  try {
    const row = (await db(T.node).select('incarnation').where('nodename', ctx.options.nodeName).first()) as
      { incarnation: string } | undefined;
    return row?.incarnation === incarnation;
  } catch {
    // No such table there: another database (or one not migrated), so not the store's.
    return false;
  }
}

/** Frees the name at a graceful stop, so a replacement can start at once. Only this incarnation's row. */
export function releaseNodeName(ctx: StoreContext, incarnation: string): Promise<boolean> {
  return ctx.write('releaseNodeName', undefined, async (db) => {
    const n = await db(T.node).where({ nodename: ctx.options.nodeName, incarnation }).delete();
    return affected(n) === 1;
  });
}

/**
 * The nodes of the cluster: every claimed name (`mats_socket_node`), with the number of sessions registered to it,
 * plus names that only sessions still name (a node whose row is gone, e.g. deleted by hand). Ordered by name.
 */
export function getNodes(ctx: StoreContext, trx?: Knex.Transaction): Promise<NodeInfo[]> {
  return ctx.read('getNodes', trx, async (db) => {
    const rowQuery = db(T.node).select('nodename', 'started_timestamp', 'liveliness_timestamp');
    const rows = (await rowQuery) as (NodeRow & { nodename: string; started_timestamp: number | string })[];
    const countQuery = db(T.session).select('nodename').count({ n: '*' }).whereNotNull('nodename');
    const counts: { nodename: string; n: unknown }[] = await countQuery.groupBy('nodename');
    const now = ctx.now();
    const nodes = new Map<string, NodeInfo>();
    for (const r of rows) {
      const livelinessTs = num(r.liveliness_timestamp);
      nodes.set(r.nodename, {
        nodeName: r.nodename,
        startedTs: num(r.started_timestamp),
        livelinessTs,
        alive: now - livelinessTs < ctx.options.nodeDeadAfterMs,
        sessions: 0,
      });
    }
    for (const c of counts) {
      const node = nodes.get(c.nodename);
      if (node) node.sessions = num(c.n);
      else {
        nodes.set(c.nodename, {
          nodeName: c.nodename,
          startedTs: null,
          livelinessTs: null,
          alive: false,
          sessions: num(c.n),
        });
      }
    }
    return [...nodes.values()].sort((a, b) =>
      a.nodeName < b.nodeName ? -1 : a.nodeName > b.nodeName ? 1 : 0,
    );
  });
}
