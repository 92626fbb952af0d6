import { expect } from 'chai';
import { silentLogger } from '../../../src/logging.ts';
import { BroadcastRetry } from '../../../src/server/topics/BroadcastRetry.ts';
import type { PreparedPublish } from '../../../src/server/topics/PreparedPublish.ts';

const pub = (seq: number): PreparedPublish => ({ topicId: 't', smid: `E.${seq}`, seq, envelope: '{}' });

describe('BroadcastRetry', () => {
  it('sends failed broadcasts again when told the broker is back, oldest first, and keeps them while sending fails', async () => {
    const sent: number[][] = [];
    let fail = true;
    const retry = new BroadcastRetry((batch) => {
      if (fail) return Promise.reject(new Error('broker down'));
      sent.push(batch.map((p) => p.seq!));
      return Promise.resolve();
    }, silentLogger);
    retry.failed([pub(1), pub(2)]);
    retry.failed([pub(3)]);
    retry.retryNow();
    await new Promise((resolve) => setImmediate(resolve));
    expect(sent).to.deep.equal([]);
    expect(retry.waiting).to.equal(3);
    fail = false;
    retry.retryNow();
    await new Promise((resolve) => setImmediate(resolve));
    expect(sent).to.deep.equal([[1, 2, 3]]);
    expect(retry.waiting).to.equal(0);
    retry.stop();
  });

  it('keeps at most maxUnsent, forgetting the oldest', () => {
    const retry = new BroadcastRetry(() => Promise.resolve(), silentLogger, 2);
    retry.failed([pub(1), pub(2), pub(3)]);
    expect(retry.waiting).to.equal(2);
    retry.stop();
  });
});
