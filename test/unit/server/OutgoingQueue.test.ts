import { expect } from 'chai';
import { OutgoingQueue, type OutEnvelope } from '../../../src/server/connection/OutgoingQueue.ts';

function queue(s2c = 0) {
  const frames: OutEnvelope[][] = [];
  let resolveNext: (() => void) | undefined;
  const q = new OutgoingQueue({
    writeEnvelopes: (envelopes) => {
      frames.push(envelopes);
      resolveNext?.();
    },
    s2cDebugOptions: () => s2c,
    nodeName: 'node1',
    now: () => Date.now(),
  });
  const nextFrame = (): Promise<OutEnvelope[]> =>
    new Promise((resolve) => {
      const before = frames.length;
      resolveNext = () => {
        if (frames.length > before) resolve(frames[frames.length - 1]!);
      };
    });
  return { q, frames, nextFrame };
}

describe('OutgoingQueue', () => {
  it('never writes in the same event-loop turn, even with delay 0', async () => {
    const { q, frames, nextFrame } = queue();
    const next = nextFrame();
    q.enqueue({ t: 'PONG', x: '1' }, 0);
    expect(frames).to.have.length(0);
    expect(await next).to.deep.equal([{ t: 'PONG', x: '1' }]);
  });

  it('folds desc-less ACKs, NACKs and ACK2s into one envelope each; envelopes with desc stay alone', async () => {
    const { q, nextFrame } = queue();
    const next = nextFrame();
    q.enqueue({ t: 'ACK', cmid: '1' }, 4);
    q.enqueue({ t: 'ACK2', smid: 'a' }, 25);
    q.enqueue({ t: 'ACK', cmid: '2' }, 4);
    q.enqueue({ t: 'NACK', cmid: '3', desc: 'why' }, 4);
    q.enqueue({ t: 'ACK', cmid: '4', desc: 'dupe SEND ACK' }, 4);
    q.enqueue({ t: 'NACK', cmid: '5' }, 4);
    expect(await next).to.deep.equal([
      { t: 'ACK', ids: ['1', '2'] },
      { t: 'ACK2', smid: 'a' },
      { t: 'NACK', cmid: '3', desc: 'why' },
      { t: 'ACK', cmid: '4', desc: 'dupe SEND ACK' },
      { t: 'NACK', cmid: '5' },
    ]);
  });

  it('sends everything pending when the earliest is due', async () => {
    const { q, nextFrame } = queue();
    const next = nextFrame();
    const t0 = Date.now();
    q.enqueue({ t: 'ACK2', smid: 'x' }, 200);
    q.enqueue({ t: 'SUB_OK', eid: 'topic' }, 2);
    const frame = await next;
    expect(Date.now() - t0).to.be.lessThan(150);
    expect(frame.map((e) => e.t)).to.deep.equal(['ACK2', 'SUB_OK']);
  });

  it('elides a pending elidable ACK when the reply is written first', async () => {
    const { q, frames, nextFrame } = queue();
    q.enqueue({ t: 'ACK', cmid: '7' }, 20, { elidable: true });
    q.enqueue({ t: 'ACK', cmid: '8' }, 20, { elidable: true });
    q.elideAck('7');
    const next = nextFrame();
    expect(await next).to.deep.equal([{ t: 'ACK', cmid: '8' }]);
    q.enqueue({ t: 'ACK', cmid: '9' }, 10, { elidable: true });
    q.elideAck('9');
    await new Promise((r) => setTimeout(r, 30));
    expect(frames).to.have.length(1);
  });

  it('stamps debug at write time: mscts/mscnn for replies, the session options for server-initiated', async () => {
    const { q, nextFrame } = queue(2);
    const next = nextFrame();
    q.enqueue({ t: 'RESOLVE', cmid: '1', tid: 't', debug: { resd: 3, cmrts: 5, cmrnn: 'n0' } }, 1, {
      stamp: 'reply',
    });
    q.enqueue({ t: 'PUB', eid: 'e', smid: 's', tid: 't', debug: { smcts: 1, smcnn: 'n0' } }, 1, {
      stamp: 'serverInitiated',
    });
    const [reply, pub] = await next;
    expect(reply!.debug).to.include({ resd: 3, cmrts: 5, cmrnn: 'n0', mscnn: 'node1' });
    expect(reply!.debug).to.have.property('mscts').that.is.a('number');
    expect(pub!.debug).to.deep.equal({ resd: 2, smcnn: 'n0', mscnn: 'node1' });
  });

  it('drops everything after close()', async () => {
    const { q, frames } = queue();
    q.enqueue({ t: 'ACK', cmid: '1' }, 1);
    q.close();
    q.enqueue({ t: 'ACK', cmid: '2' }, 1);
    await new Promise((r) => setTimeout(r, 10));
    expect(frames).to.have.length(0);
  });
});
