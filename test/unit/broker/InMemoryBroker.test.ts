import { expect } from 'chai';
import { InMemoryBroker } from '../../../src/broker/InMemoryBroker.ts';
import type { InMemoryChannel } from '../../../src/broker/InMemoryChannel.ts';
import type { BrokerDelivery } from '../../../src/broker/InMemoryQueue.ts';
import type { MessageProperties } from '../../../src/broker/Transport.ts';
import { ErrorCode, TransportError } from '../../../src/errors.ts';
import { elapse, rejectionOf, waitFor } from '../../integration/broker/transportTestUtil.ts';

const props = (messageId: string, extra: Partial<MessageProperties> = {}): MessageProperties => ({
  messageId,
  persistent: true,
  headers: {},
  ...extra,
});

async function channel(broker: InMemoryBroker, name = 'c'): Promise<InMemoryChannel> {
  const connection = await broker.connect(name);
  return connection.createChannel();
}

function consume(
  ch: InMemoryChannel,
  queue: string,
  prefetch = 10,
): Promise<BrokerDelivery[]> & { got: BrokerDelivery[] } {
  const got: BrokerDelivery[] = [];
  const p = ch.consume(queue, { prefetch, onDelivery: (d) => got.push(d) }).then(() => got);
  return Object.assign(p, { got });
}

const bodies = (ds: readonly BrokerDelivery[]): string[] => ds.map((d) => d.body.toString());

describe('InMemoryBroker', () => {
  let broker: InMemoryBroker;
  beforeEach(() => {
    broker = new InMemoryBroker();
  });
  afterEach(() => {
    broker.dropConnections();
  });

  it('confirms asynchronously and delivers asynchronously', async () => {
    const ch = await channel(broker);
    await ch.assertQueue('q');
    const got: string[] = [];
    await ch.consume('q', { prefetch: 1, onDelivery: (d) => got.push(d.body.toString()) });
    let confirmed = false;
    const p = ch.publish('', 'q', Buffer.from('a'), props('1'), true).then((o) => {
      confirmed = true;
      return o;
    });
    expect(confirmed).to.equal(false);
    expect(got).to.deep.equal([]);
    expect(await p).to.equal('ack');
    await waitFor(() => got.length === 1);
  });

  it('returns a mandatory publish to a missing queue (then acks); drops a non-mandatory one', async () => {
    const ch = await channel(broker);
    expect(await ch.publish('', 'missing', Buffer.from('a'), props('1'), true)).to.equal('returned');
    expect(await ch.publish('', 'missing', Buffer.from('a'), props('2'), false)).to.equal('ack');
    expect(broker.hasQueue('missing')).to.equal(false);
  });

  it('fails a declare of an existing queue with another kind as a 406 that closes the channel', async () => {
    const ch = await channel(broker);
    await ch.assertQueue('q', { kind: 'classic' });
    const closed = new Promise<TransportError | undefined>((resolve) => ch.once('close', resolve));
    const error = await rejectionOf(ch.assertQueue('q', { kind: 'quorum' }));
    expect(error)
      .to.be.instanceOf(TransportError)
      .with.property('code', ErrorCode.TRANSPORT_PRECONDITION_FAILED);
    expect(await closed).to.have.property('code', ErrorCode.TRANSPORT_PRECONDITION_FAILED);
    expect(ch.open).to.equal(false);
  });

  it('gives a delivery count on quorum queues only, as RabbitMQ does (classic queues say redelivered)', async () => {
    const ch = await channel(broker);
    await ch.assertQueue('quorum');
    await ch.assertQueue('classic', { kind: 'classic' });
    for (const q of ['quorum', 'classic']) await ch.publish('', q, Buffer.from(q), props(q), true);
    const quorum = consume(ch, 'quorum');
    const classic = consume(ch, 'classic');
    await Promise.all([quorum, classic]);
    await waitFor(() => quorum.got.length === 1 && classic.got.length === 1);
    ch.reject(quorum.got[0]!.deliveryTag, true);
    ch.reject(classic.got[0]!.deliveryTag, true);
    await waitFor(() => quorum.got.length === 2 && classic.got.length === 2);
    expect([quorum.got[1]!.deliveryCount, quorum.got[1]!.redelivered]).to.deep.equal([1, true]);
    expect([classic.got[1]!.deliveryCount, classic.got[1]!.redelivered]).to.deep.equal([0, true]);
  });

  it('closes the channel on an unknown delivery tag and requeues its unacked messages at the head, counted', async () => {
    const ch = await channel(broker);
    await ch.assertQueue('q');
    for (const x of ['a', 'b']) await ch.publish('', 'q', Buffer.from(x), props(x), true);
    const c = consume(ch, 'q', 2);
    await c;
    await waitFor(() => c.got.length === 2);
    const closed = new Promise<TransportError | undefined>((resolve) => ch.once('close', resolve));
    ch.ack(c.got[0]!.deliveryTag);
    ch.ack(c.got[0]!.deliveryTag); // twice: unknown tag
    expect(await closed)
      .to.be.instanceOf(TransportError)
      .with.property('code', ErrorCode.TRANSPORT_CHANNEL_CLOSED);
    expect(() => ch.ack(c.got[1]!.deliveryTag)).to.throw(TransportError);
    const ch2 = await channel(broker, 'c2');
    const c2 = consume(ch2, 'q');
    await waitFor(() => c2.got.length === 1);
    expect(c2.got.map((d) => [d.body.toString(), d.deliveryCount, d.redelivered])).to.deep.equal([
      ['b', 1, true],
    ]);
  });

  it('requeues a rejected message behind the ready ones and returns a closed channel’s message to the head', async () => {
    const ch = await channel(broker);
    await ch.assertQueue('q');
    for (const x of ['a', 'b']) await ch.publish('', 'q', Buffer.from(x), props(x), true);
    const c = consume(ch, 'q', 1);
    await waitFor(() => c.got.length === 1);
    ch.reject(c.got[0]!.deliveryTag, true);
    await waitFor(() => c.got.length === 2);
    expect(bodies(c.got)).to.deep.equal(['a', 'b']);
    await ch.close(); // b is unacked: it goes back to the head, in front of a
    const ch2 = await channel(broker, 'c2');
    const c2 = consume(ch2, 'q');
    await waitFor(() => c2.got.length === 2);
    expect(c2.got.map((d) => [d.body.toString(), d.deliveryCount])).to.deep.equal([
      ['b', 1],
      ['a', 1],
    ]);
  });

  it('round-robins over consumers with room under their prefetch', async () => {
    const ch = await channel(broker);
    await ch.assertQueue('q');
    const one = consume(ch, 'q', 1);
    const two = consume(ch, 'q', 2);
    await Promise.all([one, two]);
    for (const x of ['a', 'b', 'c', 'd']) await ch.publish('', 'q', Buffer.from(x), props(x), true);
    await waitFor(() => one.got.length + two.got.length === 3);
    await elapse(20);
    expect([one.got.length, two.got.length]).to.deep.equal([1, 2]);
    expect(broker.queueDepth('q')).to.equal(1);
    expect(broker.unackedCount()).to.equal(3);
  });

  it('deletes exclusive queues with their connection and refuses them to other connections', async () => {
    const owner = await broker.connect('owner');
    const ch = await owner.createChannel();
    const q = await ch.assertQueue('', { exclusive: true });
    expect(q).to.match(/^amq\.gen-/);
    const other = await channel(broker, 'other');
    const error = await rejectionOf(other.consume(q, { prefetch: 1, onDelivery: () => {} }));
    expect(error).to.have.property('code', ErrorCode.TRANSPORT_CHANNEL_CLOSED);
    expect(broker.hasQueue(q)).to.equal(true);
    await owner.close();
    expect(broker.hasQueue(q)).to.equal(false);
  });

  it('routes a direct exchange publish to every bound queue and drops it when nothing is bound', async () => {
    const ch = await channel(broker);
    await ch.assertExchange('x');
    await ch.assertQueue('q1');
    await ch.assertQueue('q2');
    await ch.bindQueue('q1', 'x', 'k');
    await ch.bindQueue('q2', 'x', 'k');
    expect(await ch.publish('x', 'k', Buffer.from('a'), props('1'), false)).to.equal('ack');
    expect(await ch.publish('x', 'other', Buffer.from('b'), props('2'), false)).to.equal('ack');
    expect([broker.queueDepth('q1'), broker.queueDepth('q2')]).to.deep.equal([1, 1]);
  });

  it('drops expired messages at the head, or dead-letters them with a backstop', async () => {
    const ch = await channel(broker);
    await ch.assertQueue('q');
    await ch.assertQueue('dlq');
    broker.setBackstop('q', { deliveryLimit: 5, deadLetterQueue: 'dlq' });
    await ch.publish('', 'q', Buffer.from('old'), props('1', { expiration: 10 }), true);
    await ch.publish('', 'q', Buffer.from('fresh'), props('2'), true);
    await elapse(30);
    expect(broker.queueDepth('q')).to.equal(1);
    const [dead] = broker.drainQueue('dlq');
    expect(dead!.body.toString()).to.equal('old');
    expect(dead!.properties.expiration).to.equal(undefined);
    expect(dead!.properties.headers['x-first-death-reason']).to.equal('expired');
  });

  it('dead-letters rejected(no requeue) and over-limit messages with x-death headers', async () => {
    const ch = await channel(broker);
    await ch.assertQueue('q');
    await ch.assertQueue('dlq');
    broker.setBackstop('q', { deliveryLimit: 0, deadLetterQueue: 'dlq' });
    await ch.publish('', 'q', Buffer.from('rejected'), props('1'), true);
    await ch.publish('', 'q', Buffer.from('limit'), props('2'), true);
    const c = consume(ch, 'q', 2);
    await waitFor(() => c.got.length === 2);
    ch.reject(c.got[0]!.deliveryTag, false);
    ch.reject(c.got[1]!.deliveryTag, true);
    await waitFor(() => broker.queueDepth('dlq') === 2);
    const dead = broker.drainQueue('dlq');
    expect(
      dead.map((d) => [d.body.toString(), d.properties.headers['x-first-death-reason'], d.deliveryCount]),
    ).to.deep.equal([
      ['rejected', 'rejected', 0],
      ['limit', 'delivery_limit', 0],
    ]);
    const deaths = JSON.parse(String(dead[1]!.properties.headers['x-death'])) as Array<{
      reason: string;
      queue: string;
    }>;
    expect(deaths[0]).to.include({ reason: 'delivery_limit', queue: 'q' });
  });

  it('stalls publishes while blocked and processes them in order when unblocked', async () => {
    const connection = await broker.connect('c');
    const ch = await connection.createChannel();
    await ch.assertQueue('q');
    const events: string[] = [];
    connection.on('blocked', (reason) => events.push(`blocked:${reason}`));
    connection.on('unblocked', () => events.push('unblocked'));
    broker.blockPublishing('alarm');
    const p1 = ch.publish('', 'q', Buffer.from('1'), props('1'), true);
    const p2 = ch.publish('', 'q', Buffer.from('2'), props('2'), true);
    await elapse(20);
    expect(broker.queueDepth('q')).to.equal(0);
    broker.unblockPublishing();
    expect(await Promise.all([p1, p2])).to.deep.equal(['ack', 'ack']);
    expect(bodies(broker.drainQueue('q') as unknown as BrokerDelivery[])).to.deep.equal(['1', '2']);
    expect(events).to.deep.equal(['blocked:alarm', 'unblocked']);
  });

  it('blocks only a connection that publishes during the alarm; the broker then reads nothing more from it', async () => {
    const publisher = await broker.connect('publisher');
    const consumer = await broker.connect('consumer');
    const pch = await publisher.createChannel();
    const cch = await consumer.createChannel();
    await pch.assertQueue('q');
    await pch.publish('', 'q', Buffer.from('0'), props('0'), true);
    const events: string[] = [];
    publisher.on('blocked', (reason) => events.push(`publisher blocked:${reason}`));
    consumer.on('blocked', (reason) => events.push(`consumer blocked:${reason}`));
    publisher.on('unblocked', () => events.push('publisher unblocked'));
    broker.blockPublishing();
    await pch.assertQueue('declared-before-publishing');
    const confirm = pch.publish('', 'q', Buffer.from('1'), props('1'), true);
    let declared = false;
    const declare = pch.assertQueue('declared-while-blocked').then(() => (declared = true));
    // The consumer's connection never published: it consumes and acks as before.
    const got: BrokerDelivery[] = [];
    await cch.consume('q', { prefetch: 5, onDelivery: (d) => got.push(d) });
    await waitFor(() => got.length === 1);
    cch.ack(got[0]!.deliveryTag);
    await elapse(20);
    expect(broker.queueDepth('q')).to.equal(0);
    expect(broker.unackedCount()).to.equal(0);
    expect(declared).to.equal(false);
    expect(events).to.deep.equal(['publisher blocked:low on memory']);
    broker.unblockPublishing();
    expect(await confirm).to.equal('ack');
    await declare;
    expect(events).to.deep.equal(['publisher blocked:low on memory', 'publisher unblocked']);
  });

  it('nacks or delays the next N confirms on request', async () => {
    const ch = await channel(broker);
    await ch.assertQueue('q');
    broker.nackNextConfirms(1);
    expect(await ch.publish('', 'q', Buffer.from('1'), props('1'), true)).to.equal('nack');
    expect(broker.queueDepth('q')).to.equal(0);
    broker.delayNextConfirms(1, 60);
    const start = Date.now();
    expect(await ch.publish('', 'q', Buffer.from('2'), props('2'), true)).to.equal('ack');
    expect(Date.now() - start).to.be.at.least(50);
  });

  it('fails unconfirmed publishes when the connection is dropped', async () => {
    const connection = await broker.connect('c');
    const ch = await connection.createChannel();
    await ch.assertQueue('q');
    broker.blockPublishing();
    const p = ch.publish('', 'q', Buffer.from('1'), props('1'), true);
    expect(broker.dropConnections()).to.equal(1);
    expect(await rejectionOf(p)).to.have.property('code', ErrorCode.TRANSPORT_UNAVAILABLE);
    broker.unblockPublishing();
    expect(broker.queueDepth('q')).to.equal(0);
  });

  it('refuses connections while unavailable', async () => {
    broker.setAvailable(false);
    expect(await rejectionOf(broker.connect('c'))).to.have.property('code', ErrorCode.TRANSPORT_UNAVAILABLE);
    broker.setAvailable(true);
    await broker.connect('c');
  });

  it('cancels consumers of a deleted queue from the server side', async () => {
    const ch = await channel(broker);
    await ch.assertQueue('q');
    let cancelled = false;
    await ch.consume('q', { prefetch: 1, onDelivery: () => {}, onCancel: () => (cancelled = true) });
    broker.deleteQueue('q');
    await waitFor(() => cancelled);
    expect(ch.open).to.equal(true);
  });

  describe('waitIdle()', () => {
    it('resolves once deliveries are acked and the named queues are empty', async () => {
      const ch = await channel(broker);
      await ch.assertQueue('q');
      await ch.consume('q', { prefetch: 5, onDelivery: (d) => setTimeout(() => ch.ack(d.deliveryTag), 10) });
      for (const x of ['a', 'b', 'c']) void ch.publish('', 'q', Buffer.from(x), props(x), true);
      await broker.waitIdle(['q'], 2000);
      expect(broker.unackedCount()).to.equal(0);
      expect(broker.queueDepth('q')).to.equal(0);
    });

    it('rejects after the timeout when something stays in flight', async () => {
      const ch = await channel(broker);
      await ch.assertQueue('q');
      await ch.publish('', 'q', Buffer.from('a'), props('a'), true);
      const error = await rejectionOf(broker.waitIdle(['q'], 30));
      expect(error.message).to.match(/not idle/);
    });
  });
});
