import { EventEmitter } from 'node:events';
import { expect } from 'chai';
import type { AmqpPublishOptions } from '../../../src/broker/amqpProperties.ts';
import {
  PublishChannelPool,
  type ConfirmChannelLike,
  type PoolMessage,
} from '../../../src/broker/PublishChannelPool.ts';
import { ErrorCode } from '../../../src/errors.ts';
import { rejectionOf, waitFor } from '../../integration/broker/transportTestUtil.ts';

/** A confirm channel whose confirms and write-buffer state the test controls. */
class FakeChannel extends EventEmitter implements ConfirmChannelLike {
  readonly sent: Array<{ id: string; cb: (err: unknown) => void }> = [];
  full = false;
  publish(
    _e: string,
    _rk: string,
    _b: Buffer,
    options: AmqpPublishOptions,
    cb: (err: unknown) => void,
  ): boolean {
    this.sent.push({ id: options.messageId, cb });
    return !this.full;
  }
  confirm(n = 1, err: unknown = null): void {
    for (const s of this.sent.splice(0, n)) s.cb(err);
  }
}

const msg = (id: string, routingKey = 'q'): PoolMessage => ({
  exchange: '',
  routingKey,
  body: Buffer.from(id),
  options: { messageId: id, persistent: true, mandatory: true, headers: {} },
});

describe('PublishChannelPool', () => {
  const far = () => Date.now() + 5000;

  it('publishes a batch in order on one channel, and spreads batches round robin', async () => {
    const pool = new PublishChannelPool(10);
    const a = new FakeChannel();
    const b = new FakeChannel();
    pool.add(a);
    pool.add(b);
    const first = pool.publishBatch([msg('1'), msg('2'), msg('3')], far());
    const second = pool.publishBatch([msg('4')], far());
    expect(a.sent.map((s) => s.id)).to.deep.equal(['1', '2', '3']);
    expect(b.sent.map((s) => s.id)).to.deep.equal(['4']);
    a.confirm(3);
    b.confirm(1);
    expect(await Promise.all([...first, ...second])).to.deep.equal(['ack', 'ack', 'ack', 'ack']);
  });

  it('bounds unconfirmed messages per channel and continues a batch on the same channel when room frees', async () => {
    const pool = new PublishChannelPool(2);
    const a = new FakeChannel();
    pool.add(a);
    const results = pool.publishBatch([msg('1'), msg('2'), msg('3')], far());
    await Promise.resolve();
    expect(a.sent.map((s) => s.id)).to.deep.equal(['1', '2']);
    a.confirm(1);
    await waitFor(() => a.sent.length === 2 && a.sent[1]!.id === '3');
    a.confirm(2);
    expect(await Promise.all(results)).to.deep.equal(['ack', 'ack', 'ack']);
  });

  it('waits for drain after publish() returned false, without re-sending', async () => {
    const pool = new PublishChannelPool(100);
    const a = new FakeChannel();
    pool.add(a);
    a.full = true;
    const results = pool.publishBatch([msg('1'), msg('2')], far());
    await Promise.resolve();
    expect(a.sent.map((s) => s.id)).to.deep.equal(['1']);
    a.full = false;
    a.emit('drain');
    await waitFor(() => a.sent.length === 2);
    a.confirm(2);
    expect(await Promise.all(results)).to.deep.equal(['ack', 'ack']);
  });

  it('reports a return followed by its ack as returned, a nack as nack, a closed channel as unavailable', async () => {
    const pool = new PublishChannelPool(100);
    const a = new FakeChannel();
    const handle = pool.add(a);
    const [r1, r2, r3] = pool.publishBatch([msg('1', 'gone'), msg('2'), msg('3')], far());
    handle.returned('1', 'gone');
    a.confirm(1);
    a.confirm(1, new Error('message nacked'));
    a.confirm(1, new Error('channel closed'));
    expect(await r1).to.equal('returned');
    expect(await r2).to.equal('nack');
    expect(await rejectionOf(r3!)).to.have.property('code', ErrorCode.TRANSPORT_UNAVAILABLE);
  });

  it('times out a publish that finds no room before its deadline', async () => {
    const pool = new PublishChannelPool(1);
    const a = new FakeChannel();
    pool.add(a);
    const [first] = pool.publishBatch([msg('1')], far());
    const [second] = pool.publishBatch([msg('2')], Date.now() + 30);
    expect(await rejectionOf(second!)).to.have.property('code', ErrorCode.TRANSPORT_CONFIRM_TIMEOUT);
    a.confirm(1);
    expect(await first).to.equal('ack');
    expect(a.sent).to.have.length(0);
  });

  it('fails the rest of a batch when its channel closes, and waiting publishes on clear()', async () => {
    const pool = new PublishChannelPool(1);
    const a = new FakeChannel();
    const handle = pool.add(a);
    const batch = pool.publishBatch([msg('1'), msg('2')], far());
    await Promise.resolve();
    handle.closed();
    a.confirm(1, new Error('channel closed'));
    expect(await rejectionOf(batch[0]!)).to.have.property('code', ErrorCode.TRANSPORT_UNAVAILABLE);
    expect(await rejectionOf(batch[1]!)).to.have.property('code', ErrorCode.TRANSPORT_UNAVAILABLE);
    const waiting = pool.publishBatch([msg('3')], far());
    pool.clear(new Error('gone'));
    expect((await rejectionOf(waiting[0]!)).message).to.equal('gone');
  });
});
