import type { Knex } from 'knex';
import { randomId } from '../../util/ids.ts';
import { isUniqueViolation } from '../sqlErrors.ts';
import type { TopicAppendResult, TopicMessageInput, TopicPurgeResult, TopicReplay } from '../storeTypes.ts';
import { affected, num, rowOf, T, type StoreContext } from './StoreContext.ts';

const EPOCH_LENGTH = 6;

interface TopicRow {
  epoch: string;
  last_seq: number | string;
}

/**
 * Appends to the topic log (BR-1). The sequence is taken under the topic row's exclusive lock, which the UPDATE
 * itself acquires (equivalent to SELECT … FOR UPDATE followed by the UPDATE, one round trip less, and also a write
 * lock on SQLite). Concurrent appenders queue on that lock, so the sequence is gapless and in commit order. The
 * log row's `stored_timestamp` is read after the lock is held, so on one node it grows with the sequence; across
 * nodes clocks differ, which is why the purge removes only a prefix of the sequence ({@link purgeTopicLog}).
 */
export function appendTopicMessage(
  ctx: StoreContext,
  m: TopicMessageInput,
  trx?: Knex.Transaction,
): Promise<TopicAppendResult> {
  return ctx.tx('appendTopicMessage', trx, async (t, owned) => {
    const now = ctx.now();
    let topic = await bumpSequence(t, m.topicId, now);
    if (!topic) {
      const epoch = randomId(EPOCH_LENGTH);
      try {
        // A concurrent creator's unique violation is expected and must leave the transaction usable.
        await ctx.savepoint(
          t,
          (sp) =>
            sp(T.topic).insert({ topic_id: m.topicId, epoch, last_seq: 1, last_published_timestamp: now }),
          { owned, statements: 1, continueAfterFailure: true },
        );
        topic = { epoch, last_seq: 1 };
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
        topic = await bumpSequence(t, m.topicId, now);
        if (!topic) throw err;
      }
    }
    const seq = num(topic.last_seq);
    await t(T.topicLog).insert({
      topic_id: m.topicId,
      seq,
      trace_id: m.traceId,
      envelope: m.envelope,
      message_text: m.messageText ?? null,
      stored_timestamp: ctx.now(),
    });
    const max = ctx.options.topicReplayMaxPerTopic;
    if (seq > max) {
      await t(T.topicLog)
        .where('topic_id', m.topicId)
        .where('seq', '<=', seq - max)
        .delete();
    }
    return { epoch: topic.epoch, seq };
  });
}

async function bumpSequence(t: Knex.Transaction, topicId: string, now: number): Promise<TopicRow | null> {
  const n = await t(T.topic)
    .where('topic_id', topicId)
    .update({ last_seq: t.raw('?? + 1', ['last_seq']), last_published_timestamp: now });
  if (affected(n) === 0) return null;
  const row = await t(T.topic)
    .select('epoch', 'last_seq')
    .where('topic_id', topicId)
    .first<TopicRow | undefined>();
  return row ?? null;
}

export function getTopicReplay(
  ctx: StoreContext,
  topicId: string,
  afterSeq: number,
  limit: number,
  trx?: Knex.Transaction,
): Promise<TopicReplay | null> {
  return ctx.read('getTopicReplay', trx, async (db) => {
    const topic = await db(T.topic)
      .select('epoch', 'last_seq')
      .where('topic_id', topicId)
      .first<TopicRow | undefined>();
    if (!topic) return null;
    const lastSeq = num(topic.last_seq);
    const oldest = (await db(T.topicLog).min({ s: 'seq' }).where('topic_id', topicId).first()) as
      { s: unknown } | undefined;
    const rows = (await db(T.topicLog)
      .select('seq', 'trace_id', 'envelope', 'message_text', 'stored_timestamp')
      .where('topic_id', topicId)
      .where('seq', '>', afterSeq)
      .orderBy('seq')
      .limit(limit)) as {
      seq: number | string;
      trace_id: string;
      envelope: string;
      message_text: string | null;
      stored_timestamp: number | string;
    }[];
    return {
      epoch: topic.epoch,
      lastSeq,
      oldestRetainedSeq: oldest?.s === null || oldest?.s === undefined ? lastSeq + 1 : num(oldest.s),
      messages: rows.map((r) => ({
        seq: num(r.seq),
        traceId: r.trace_id,
        envelope: r.envelope,
        messageText: r.message_text,
        storedTs: num(r.stored_timestamp),
      })),
    };
  });
}

/**
 * Deletes log rows stored before `olderThanTs` in batches, then topic rows idle for `topicIdleRetentionMs` whose
 * log is empty. A topic created again gets a new epoch, so old resubscribers correctly get SUB_LOST.
 *
 * Per topic it deletes the whole prefix up to the newest expired seq found, including rows in it that are not
 * expired yet: replay trusts that the retained log is one unbroken run of seqs (it compares the requested seq
 * with the oldest kept one only), and timestamps need not grow with the seq (writers on other nodes have other
 * clocks). Deleting only the expired rows of the range left holes that a resubscriber was told were not there.
 */
export async function purgeTopicLog(
  ctx: StoreContext,
  olderThanTs: number,
  trx?: Knex.Transaction,
): Promise<TopicPurgeResult> {
  const batch = ctx.options.inClauseChunk;
  let logRows = 0;
  for (;;) {
    const expired = await ctx.read(
      'purgeTopicLog (select)',
      trx,
      async (db) =>
        (await db(T.topicLog)
          .select('topic_id', 'seq')
          .where('stored_timestamp', '<', olderThanTs)
          .orderBy('stored_timestamp')
          .limit(batch)) as { topic_id: string; seq: number | string }[],
    );
    if (expired.length === 0) break;
    const maxSeq = new Map<string, number>();
    for (const r of expired) maxSeq.set(r.topic_id, Math.max(maxSeq.get(r.topic_id) ?? 0, num(r.seq)));
    logRows += await ctx.write(
      'purgeTopicLog',
      trx,
      async (db) => {
        let n = 0;
        for (const [topicId, seq] of maxSeq) {
          n += affected(await db(T.topicLog).where('topic_id', topicId).where('seq', '<=', seq).delete());
        }
        return n;
      },
      maxSeq.size > 1,
    );
    if (expired.length < batch) break;
  }
  const idleBefore = ctx.now() - ctx.options.topicIdleRetentionMs;
  let topics = 0;
  for (;;) {
    // Candidates via ix_mst_published, then a primary-key DELETE that re-checks both conditions, so a topic
    // appended to meanwhile survives (a DELETE with the subquery directly scans the whole table on MariaDB).
    const idle = await ctx.read('purgeTopicLog (idle topics)', trx, async (db) =>
      (
        (await db(`${T.topic} as t`)
          .select('t.topic_id')
          .where('t.last_published_timestamp', '<', idleBefore)
          .whereNotExists(rowOf(db, T.topicLog, 'topic_id', 't.topic_id'))
          .limit(batch)) as { topic_id: string }[]
      ).map((r) => r.topic_id),
    );
    if (idle.length === 0) break;
    topics += await ctx.write('purgeTopicLog (topics)', trx, async (db) =>
      affected(
        await db(T.topic)
          .whereIn('topic_id', idle)
          .where('last_published_timestamp', '<', idleBefore)
          .whereNotExists(rowOf(db, T.topicLog, 'topic_id', `${T.topic}.topic_id`))
          .delete(),
      ),
    );
    if (idle.length < batch) break;
  }
  return { logRows, topics };
}
