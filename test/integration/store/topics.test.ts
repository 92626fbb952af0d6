import { expect } from 'chai';
import { randomId } from '../../../src/util/ids.ts';
import { describeEachDatabase } from '../../../harness/databases.ts';
import { useStoreFixture } from './storeFixture.ts';

describeEachDatabase('ClusterStoreAndForward topic replay log', (db) => {
  const f = useStoreFixture(db, { topicReplayMaxPerTopic: 5 });

  const topic = () => `topic.${randomId(10)}`;
  const pub = (topicId: string, n: number) => ({
    topicId,
    traceId: `tr-${n}`,
    envelope: `{"t":"PUB","n":${n}}`,
    messageText: `{"v":${n}}`,
  });

  it('creates a topic with a random 6-character epoch and a sequence starting at 1', async () => {
    const t = topic();
    expect(await f.store.getTopicReplay(t, 0, 10)).to.equal(null);
    const first = await f.store.appendTopicMessage(pub(t, 1));
    expect(first.seq).to.equal(1);
    expect(first.epoch).to.match(/^[A-Za-z0-9]{6}$/);
    const second = await f.store.appendTopicMessage(pub(t, 2));
    expect(second).to.deep.equal({ epoch: first.epoch, seq: 2 });
    const replay = await f.store.getTopicReplay(t, 0, 10);
    expect(replay).to.deep.include({ epoch: first.epoch, lastSeq: 2, oldestRetainedSeq: 1 });
    expect(replay!.messages).to.deep.equal([
      {
        seq: 1,
        traceId: 'tr-1',
        envelope: '{"t":"PUB","n":1}',
        messageText: '{"v":1}',
        storedTs: f.clock.value,
      },
      {
        seq: 2,
        traceId: 'tr-2',
        envelope: '{"t":"PUB","n":2}',
        messageText: '{"v":2}',
        storedTs: f.clock.value,
      },
    ]);
    expect((await f.store.getTopicReplay(t, 1, 10))!.messages.map((m) => m.seq)).to.deep.equal([2]);
    expect((await f.store.getTopicReplay(t, 2, 10))!.messages).to.deep.equal([]);
  });

  it('trims the log to topicReplayMaxPerTopic on append', async () => {
    const t = topic();
    for (let i = 1; i <= 12; i++) await f.store.appendTopicMessage(pub(t, i));
    const replay = await f.store.getTopicReplay(t, 0, 100);
    expect(replay).to.deep.include({ lastSeq: 12, oldestRetainedSeq: 8 });
    expect(replay!.messages.map((m) => m.seq)).to.deep.equal([8, 9, 10, 11, 12]);
    expect((await f.store.getTopicReplay(t, 9, 2))!.messages.map((m) => m.seq)).to.deep.equal([10, 11]);
  });

  it('is gapless and unique under concurrent appends from several connections, including topic creation', async () => {
    const t = topic();
    const wide = [0, 1, 2, 3].map((i) =>
      f.newStore({ nodeName: `pub-${i}`, topicReplayMaxPerTopic: 1000 }, f.racerKnex()),
    );
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => wide[i % wide.length]!.appendTopicMessage(pub(t, i))),
    );
    const seqs = results.map((r) => r.seq).sort((a, b) => a - b);
    expect(seqs).to.deep.equal(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(new Set(results.map((r) => r.epoch)).size).to.equal(1);
    const replay = await wide[0]!.getTopicReplay(t, 0, 100);
    expect(replay!.messages.map((m) => m.seq)).to.deep.equal(seqs);
    expect(replay!.lastSeq).to.equal(40);
  });

  it('purges old log rows, then idle empty topics; a recreated topic gets a new epoch', async () => {
    const small = f.newStore({ inClauseChunk: 2, topicIdleRetentionMs: 60_000 });
    const t = topic();
    const keep = topic();
    const { epoch } = await f.store.appendTopicMessage(pub(t, 1));
    await f.store.appendTopicMessage(pub(t, 2));
    await f.store.appendTopicMessage(pub(t, 3));
    await f.store.appendTopicMessage(pub(keep, 1));
    const cut = f.clock.advance(1000);
    await f.store.appendTopicMessage(pub(keep, 2));
    const first = await small.purgeTopicLog(cut);
    expect(first.logRows).to.be.at.least(4);
    expect(first.topics).to.equal(0);
    expect(await f.store.getTopicReplay(t, 0, 10)).to.deep.include({
      lastSeq: 3,
      oldestRetainedSeq: 4,
      messages: [],
    });
    expect((await f.store.getTopicReplay(keep, 0, 10))!.messages.map((m) => m.seq)).to.deep.equal([2]);

    f.clock.advance(60_001);
    const second = await small.purgeTopicLog(cut);
    expect(second.topics).to.be.at.least(1);
    expect(await f.store.getTopicReplay(t, 0, 10)).to.equal(null);
    expect(await f.store.getTopicReplay(keep, 0, 10)).to.not.equal(null);
    const again = await f.store.appendTopicMessage(pub(t, 9));
    expect(again.seq).to.equal(1);
    expect(again.epoch).to.not.equal(epoch);
  });

  it('purges a prefix of the log only: a row stored later with an older timestamp leaves no hole for replay', async () => {
    const t = topic();
    for (let n = 1; n <= 4; n++) await f.store.appendTopicMessage(pub(t, n));
    // Seq 3 was written by a node whose clock is behind (or that read its clock before waiting for the lock):
    // it looks older than seq 2.
    const base = f.clock.value;
    const ts: Record<number, number> = { 1: base - 10, 2: base + 500, 3: base - 5, 4: base + 600 };
    for (const [seq, storedTs] of Object.entries(ts))
      await db()
        .knex('mats_socket_topic_log')
        .where({ topic_id: t, seq: Number(seq) })
        .update({
          stored_timestamp: storedTs,
        });
    await f.store.purgeTopicLog(base);
    const replay = (await f.store.getTopicReplay(t, 0, 10))!;
    const kept = replay.messages.map((m) => m.seq);
    // Whatever is kept is one unbroken run up to the last seq, starting at oldestRetainedSeq.
    const run = Array.from(
      { length: replay.lastSeq - replay.oldestRetainedSeq + 1 },
      (_, i) => replay.oldestRetainedSeq + i,
    );
    expect(kept).to.deep.equal(run);
    expect(kept).to.not.include(3);
  });
});
