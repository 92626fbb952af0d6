import { expect } from 'chai';
import { PassThrough } from 'node:stream';
import { amqpSocketOf, coalesceWrites } from '../../../src/broker/coalesceWrites.ts';

/** A PassThrough that records how its writes reach `_write`/`_writev` (one call each = one syscall on a socket). */
class RecordingStream extends PassThrough {
  readonly flushes: number[] = [];

  override _writev(
    chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>,
    callback: (error?: Error | null) => void,
  ): void {
    this.flushes.push(chunks.length);
    for (const { chunk } of chunks) this.push(chunk);
    callback();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.flushes.push(1);
    this.push(chunk);
    callback();
  }
}

const nextTick = (): Promise<void> => new Promise((resolve) => process.nextTick(resolve));

describe('coalesceWrites', () => {
  it('sends the writes of one tick in one flush, in order, and the next tick separately', async () => {
    const s = new RecordingStream();
    coalesceWrites(s);
    s.write(Buffer.from('a'));
    s.write(Buffer.from('b'));
    s.write(Buffer.from('c'));
    expect(s.flushes).to.deep.equal([]);
    await nextTick();
    expect(s.flushes).to.deep.equal([3]);
    s.write(Buffer.from('d'));
    await nextTick();
    expect(s.flushes).to.deep.equal([3, 1]);
    expect(String(s.read())).to.equal('abcd');
  });

  it('keeps backpressure: write() returns false past the high-water mark and drain follows the flush', async () => {
    const s = new RecordingStream({ writableHighWaterMark: 4 });
    coalesceWrites(s);
    expect(s.write(Buffer.from('12'))).to.equal(true);
    expect(s.write(Buffer.from('3456'))).to.equal(false);
    const drained = new Promise<void>((resolve) => s.once('drain', resolve));
    s.resume();
    await drained;
    expect(s.flushes).to.deep.equal([2]);
  });

  it('finds the socket of an amqplib ChannelModel, and nothing in other objects', () => {
    const stream = new PassThrough();
    expect(amqpSocketOf({ connection: { stream } })).to.equal(stream);
    expect(amqpSocketOf({ connection: {} })).to.equal(undefined);
    expect(amqpSocketOf(undefined)).to.equal(undefined);
  });
});
