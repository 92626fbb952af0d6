import { expect } from 'chai';
import { silentLogger } from '../../../src/logging.ts';
import type { TopicReplay } from '../../../src/store/storeTypes.ts';
import type { PreparedPublish } from '../../../src/server/topics/PreparedPublish.ts';
import { TopicContinuity } from '../../../src/server/topics/TopicContinuity.ts';

const pub = (seq: number, epoch = 'EPOCH1'): PreparedPublish => ({
  topicId: 't',
  smid: `${epoch}.${seq}`,
  seq,
  envelope: JSON.stringify({ t: 'PUB', eid: 't', tid: `m${seq}` }),
  message: String(seq),
});

function setup(log: readonly number[], failReads = false) {
  const delivered: number[] = [];
  let reads = 0;
  const continuity = new TopicContinuity({
    readReplay: (_topic, afterSeq, limit): Promise<TopicReplay | null> => {
      reads++;
      if (failReads) return Promise.reject(new Error('database down'));
      const messages = log
        .filter((s) => s > afterSeq)
        .slice(0, limit)
        .map((seq) => ({
          seq,
          traceId: `m${seq}`,
          envelope: pub(seq).envelope,
          messageText: String(seq),
          storedTs: 0,
        }));
      return Promise.resolve({ epoch: 'EPOCH1', lastSeq: Math.max(...log), oldestRetainedSeq: 1, messages });
    },
    deliver: (p) => delivered.push(p.seq!),
    hasSubscribers: () => true,
    replayBatch: 2,
    logger: silentLogger,
  });
  return { continuity, delivered, reads: () => reads };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('TopicContinuity', () => {
  it('fills a hole from the log (in batches), holds what arrives meanwhile, and drops seqs already delivered', async () => {
    const { continuity, delivered } = setup([1, 2, 3, 4, 5, 6]);
    continuity.receive(pub(1));
    continuity.receive(pub(5)); // 2-4 were lost
    continuity.receive(pub(6)); // arrives while the hole is filled
    for (let i = 0; i < 10; i++) await settle();
    continuity.receive(pub(4)); // a late duplicate
    expect(delivered).to.deep.equal([1, 2, 3, 4, 5, 6]);
  });

  it('reads the tail on catchUp()', async () => {
    const { continuity, delivered } = setup([1, 2, 3]);
    continuity.receive(pub(1));
    await continuity.catchUp();
    expect(delivered).to.deep.equal([1, 2, 3]);
  });

  it('delivers what it holds once when the log cannot be read, without reading again and again', async () => {
    const { continuity, delivered, reads } = setup([], true);
    continuity.receive(pub(1));
    continuity.receive(pub(4));
    continuity.receive(pub(5));
    for (let i = 0; i < 10; i++) await settle();
    expect(delivered).to.deep.equal([1, 4, 5]);
    expect(reads()).to.equal(1);
  });

  it('starts over with a new epoch (the topic was created again)', () => {
    const { continuity, delivered } = setup([]);
    continuity.receive(pub(7));
    continuity.receive(pub(1, 'EPOCH2'));
    expect(delivered).to.deep.equal([7, 1]);
  });
});
