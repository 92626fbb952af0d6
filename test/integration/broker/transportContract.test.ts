import { once } from 'node:events';
import { expect } from 'chai';
import type { Delivery, Transport } from '../../../src/broker/Transport.ts';
import { ErrorCode, TransportError } from '../../../src/errors.ts';
import { describeEachTransport, type TestTransportOptions } from '../../../harness/transports.ts';
import {
  collector,
  elapse,
  message,
  rejectionOf,
  toQueue,
  toTopic,
  uniqueId,
  waitFor,
} from './transportTestUtil.ts';

/**
 * The Transport contract (src/broker/Transport.ts), run unchanged against the in-memory broker and RabbitMQ.
 */
describeEachTransport('Transport contract', (broker) => {
  let transports: Transport[] = [];

  async function connected(name: string, options?: TestTransportOptions): Promise<Transport> {
    const t = broker().createTransport(`${name}.${uniqueId()}`, options);
    transports.push(t);
    await t.connect();
    return t;
  }

  const queueName = (label: string): string => `${broker().prefix}${label}.${uniqueId()}`;

  afterEach(async () => {
    await Promise.all(transports.map((t) => t.close()));
    transports = [];
  });

  describe('publish and consume', () => {
    it('round-trips body, properties and headers', async () => {
      const t = await connected('node');
      const q = queueName('roundtrip');
      const c = collector({ autoAck: true });
      await t.consume(q, { prefetch: 1 }, c.handler).ready;
      const timestamp = Math.floor(Date.now() / 1000) * 1000;
      await t.publish([
        {
          target: toQueue(q),
          body: Buffer.from('{"hello":"wörld"}'),
          properties: {
            messageId: 'mid-1',
            persistent: false,
            contentType: 'application/json',
            contentEncoding: 'deflate',
            expiration: 60_000,
            timestamp,
            appId: 'app;1.0',
            type: 'REQUEST',
            headers: { mats_TraceId: 'trace-ü', mats_IA: true, mats_Expires: 1_760_000_000_123, ratio: 0.25 },
          },
        },
      ]);
      const [d] = await c.waitFor(1);
      expect(d!.queue).to.equal(q);
      expect(d!.body.toString()).to.equal('{"hello":"wörld"}');
      expect(d!.deliveryCount).to.equal(0);
      expect(d!.redelivered).to.equal(false);
      expect(d!.properties).to.deep.include({
        messageId: 'mid-1',
        persistent: false,
        contentType: 'application/json',
        contentEncoding: 'deflate',
        expiration: 60_000,
        timestamp,
        appId: 'app;1.0',
        type: 'REQUEST',
      });
      expect(d!.properties.headers).to.deep.equal({
        mats_TraceId: 'trace-ü',
        mats_IA: true,
        mats_Expires: 1_760_000_000_123,
        ratio: 0.25,
      });
    });

    it('confirms only after the message is in the queue, never synchronously', async () => {
      const t = await connected('node');
      const q = queueName('confirm');
      let confirmed = false;
      const p = t.publish([message(toQueue(q), 'a')]).then(() => (confirmed = true));
      expect(confirmed).to.equal(false);
      await p;
      expect(await broker().queueDepth(q)).to.equal(1);
    });

    it('declares a new queue once for a burst of concurrent first publishes to it', async () => {
      const t = await connected('node');
      // Counted at the subclass hook every declare goes through (one throw-away channel each on RabbitMQ).
      const hook = t as unknown as { assertQueueConnected(queue: string): Promise<void> };
      const declare = hook.assertQueueConnected.bind(t);
      const declared: string[] = [];
      hook.assertQueueConnected = (queue) => {
        declared.push(queue);
        return declare(queue);
      };
      const q = queueName('burst');
      await Promise.all(Array.from({ length: 20 }, (_, i) => t.publish([message(toQueue(q), `m${i}`)])));
      await t.publish([message(toQueue(q), 'later')]);
      expect(declared).to.deep.equal([q]);
      expect(await broker().queueDepth(q)).to.equal(21);
    });

    it('copies the body on publish: later mutation by the publisher is not seen', async () => {
      const t = await connected('node');
      const q = queueName('copy');
      const body = Buffer.from('original');
      const p = t.publish([
        { target: toQueue(q), body, properties: { messageId: uniqueId(), persistent: true, headers: {} } },
      ]);
      body.write('mutated!');
      await p;
      const [m] = await broker().drainQueue(q, 1);
      expect(m!.body.toString()).to.equal('original');
    });

    it('round-trips a 5 MB body', async () => {
      const t = await connected('node');
      const q = queueName('large');
      const c = collector({ autoAck: true });
      await t.consume(q, { prefetch: 1 }, c.handler).ready;
      const body = Buffer.alloc(5 * 1024 * 1024);
      for (let i = 0; i < body.length; i += 4096) body.writeUInt32BE(i, i);
      await t.publish([
        { target: toQueue(q), body, properties: { messageId: uniqueId(), persistent: true, headers: {} } },
      ]);
      const [d] = await c.waitFor(1, 10_000);
      expect(d!.body.equals(body)).to.equal(true);
    });

    it('rejects an unroutable mandatory publish (queue deleted after it was asserted) with TRANSPORT_UNROUTABLE', async () => {
      const t = await connected('node');
      const q = queueName('unroutable');
      await t.publish([message(toQueue(q), 'first')]); // asserts and caches the queue
      await broker().deleteQueue(q);
      const error = await rejectionOf(t.publish([message(toQueue(q), 'second')]));
      expect(error).to.be.instanceOf(TransportError).with.property('code', ErrorCode.TRANSPORT_UNROUTABLE);
      // The transport keeps working.
      const other = queueName('other');
      await t.publish([message(toQueue(other), 'x')]);
      expect(await broker().queueDepth(other)).to.equal(1);
    });

    it('fails a declare that mismatches an existing queue with TRANSPORT_PRECONDITION_FAILED and keeps running', async () => {
      const t = await connected('node');
      const q = queueName('classic');
      await broker().declareClassicQueue(q);
      const error = await rejectionOf(t.assertQueue(q));
      expect(error)
        .to.be.instanceOf(TransportError)
        .with.property('code', ErrorCode.TRANSPORT_PRECONDITION_FAILED);
      const publishError = await rejectionOf(t.publish([message(toQueue(q), 'x')]));
      expect(publishError).to.have.property('code', ErrorCode.TRANSPORT_PRECONDITION_FAILED);
      const other = queueName('other');
      await t.publish([message(toQueue(other), 'x')]);
      expect(await broker().queueDepth(other)).to.equal(1);
      expect(t.state).to.equal('connected');
    });

    it('rejects header tables that are too large with TRANSPORT_HEADERS_TOO_LARGE', async () => {
      const t = await connected('node', { maxHeaderBytes: 16 * 1024 });
      const q = queueName('headers');
      const m = message(toQueue(q), 'x', { headers: { big: 'x'.repeat(17 * 1024) } });
      const error = await rejectionOf(t.publish([m]));
      expect(error)
        .to.be.instanceOf(TransportError)
        .with.property('code', ErrorCode.TRANSPORT_HEADERS_TOO_LARGE);
      expect(t.state).to.equal('connected');
    });
  });

  describe('consumers', () => {
    it('respects prefetch', async () => {
      const t = await connected('node');
      const q = queueName('prefetch');
      await t.publish(Array.from({ length: 10 }, (_, i) => message(toQueue(q), `m${i}`)));
      const c = collector();
      await t.consume(q, { prefetch: 3 }, c.handler).ready;
      await c.waitFor(3);
      await waitFor(async () => (await broker().queueDepth(q)) === 7, 5000, 'ready depth 7');
      await elapse(100); // nothing more may arrive while 3 are unacked
      expect(c.deliveries).to.have.length(3);
      c.deliveries[0]!.ack();
      await c.waitFor(4);
      await elapse(50);
      expect(c.deliveries).to.have.length(4);
      expect(c.deliveries.map((d) => d.body.toString())).to.deep.equal(['m0', 'm1', 'm2', 'm3']);
    });

    it('delivers to the highest-priority consumer with room; lower ones get the overflow, and all once it is gone', async () => {
      const own = await connected('own');
      const other = await connected('other');
      const q = queueName('priority');
      const low = collector({ autoAck: true });
      await other.consume(q, { prefetch: 5, priority: 0 }, low.handler).ready;
      const high = collector({ autoAck: true });
      const highConsumer = own.consume(q, { prefetch: 2, priority: 10 }, high.handler);
      await highConsumer.ready;
      for (let i = 0; i < 6; i++) {
        await own.publish([message(toQueue(q), `one${i}`)]);
        await high.waitFor(i + 1);
      }
      expect(low.deliveries).to.have.length(0);
      await highConsumer.cancel();
      await own.publish([message(toQueue(q), 'gone')]);
      await low.waitFor(1);
      // A consumer that does not settle: its prefetch fills, and the overflow goes to the lower priority.
      const busy = collector();
      await own.consume(q, { prefetch: 2, priority: 10 }, busy.handler).ready;
      await own.publish(Array.from({ length: 5 }, (_, i) => message(toQueue(q), `burst${i}`)));
      await busy.waitFor(2);
      await low.waitFor(4);
      expect(busy.deliveries.map((d) => d.body.toString())).to.deep.equal(['burst0', 'burst1']);
      expect(low.deliveries.map((d) => d.body.toString())).to.deep.equal([
        'gone',
        'burst2',
        'burst3',
        'burst4',
      ]);
    });

    it('redelivers a rejected(requeue) message with deliveryCount + 1, behind the ready messages', async () => {
      const t = await connected('node');
      const q = queueName('requeue');
      await t.publish([message(toQueue(q), 'A'), message(toQueue(q), 'B')]);
      const c = collector();
      await t.consume(q, { prefetch: 1 }, c.handler).ready;
      const [first] = await c.waitFor(1);
      expect([first!.body.toString(), first!.deliveryCount, first!.redelivered]).to.deep.equal([
        'A',
        0,
        false,
      ]);
      first!.reject(true);
      const second = (await c.waitFor(2))[1]!;
      expect([second.body.toString(), second.deliveryCount]).to.deep.equal(['B', 0]);
      second.ack();
      const third = (await c.waitFor(3))[2]!;
      expect([third.body.toString(), third.deliveryCount, third.redelivered]).to.deep.equal(['A', 1, true]);
      third.reject(true);
      const fourth = (await c.waitFor(4))[3]!;
      expect([fourth.body.toString(), fourth.deliveryCount]).to.deep.equal(['A', 2]);
      fourth.ack();
    });

    it('drops a message rejected without requeue', async () => {
      const t = await connected('node');
      const q = queueName('discard');
      await t.publish([message(toQueue(q), 'A'), message(toQueue(q), 'B')]);
      const c = collector();
      await t.consume(q, { prefetch: 1 }, c.handler).ready;
      (await c.waitFor(1))[0]!.reject(false);
      const second = (await c.waitFor(2))[1]!;
      expect(second.body.toString()).to.equal('B');
      second.ack();
    });

    it('resolves Consumer.ready only when consuming (also when consume() is called before connect())', async () => {
      const t = broker().createTransport(`early.${uniqueId()}`);
      transports.push(t);
      const q = queueName('ready');
      const c = collector({ autoAck: true });
      const consumer = t.consume(q, { prefetch: 1 }, c.handler);
      const topicConsumer = t.subscribe(`${q}.topic`, {}, c.handler);
      const state = await Promise.race([
        consumer.ready.then(() => 'ready'),
        elapse(50).then(() => 'pending'),
      ]);
      expect(state).to.equal('pending');
      await t.connect();
      await consumer.ready;
      await topicConsumer.ready;
      // Consuming and bound the moment ready resolved: a topic message published now is not lost.
      await t.publish([message(toQueue(q), 'q'), message(toTopic(`${q}.topic`), 't')]);
      const got = await c.waitFor(2);
      expect(got.map((d) => d.body.toString()).sort()).to.deep.equal(['q', 't']);
    });

    it('stops delivering after cancel(); unacked deliveries can still be acked', async () => {
      const t = await connected('node');
      const q = queueName('cancel');
      await t.publish([message(toQueue(q), 'A'), message(toQueue(q), 'B')]);
      const c = collector();
      const consumer = t.consume(q, { prefetch: 1 }, c.handler);
      const [a] = await c.waitFor(1);
      await consumer.cancel();
      await consumer.cancel(); // idempotent
      a!.ack();
      await elapse(100);
      expect(c.deliveries).to.have.length(1);
      await waitFor(async () => (await broker().queueDepth(q)) === 1, 5000, 'B still queued');
    });

    it('closes the channel on a double ack (transport:error), requeues its other unacked messages and recovers', async () => {
      const t = await connected('node');
      const q = queueName('doubleack');
      await t.publish([message(toQueue(q), 'A'), message(toQueue(q), 'B')]);
      const c = collector();
      await t.consume(q, { prefetch: 2 }, c.handler).ready;
      const [a, b] = await c.waitFor(2);
      const errored = once(t, 'transport:error', { signal: AbortSignal.timeout(5000) });
      a!.ack();
      a!.ack();
      const [{ error }] = (await errored) as [{ error: Error }];
      expect(error).to.be.instanceOf(Error);
      // B went back to the queue with its count incremented and comes back on the re-opened channel.
      const [, , again] = await c.waitFor(3);
      expect(again!.body.toString()).to.equal('B');
      expect(again!.deliveryCount).to.equal(1);
      b!.ack(); // stale: its channel is gone; dropped silently
      again!.ack();
      await elapse(50);
      expect(c.deliveries).to.have.length(3);
    });

    it('requeues a message whose handler throws before settling it', async () => {
      const t = await connected('node');
      const q = queueName('throws');
      const seen: Delivery[] = [];
      const errors: Error[] = [];
      t.on('transport:error', ({ error }) => errors.push(error));
      await t.consume(q, { prefetch: 1 }, (d) => {
        seen.push(d);
        if (seen.length === 1) throw new Error('boom');
        d.ack();
      }).ready;
      await t.publish([message(toQueue(q), 'A')]);
      await waitFor(() => seen.length === 2, 5000, 'redelivery');
      expect(seen[1]!.deliveryCount).to.equal(1);
      expect(errors.map((e) => e.message)).to.deep.equal(['boom']);
    });
  });

  describe('topics', () => {
    it('delivers a topic message once to every subscribed transport and not to others; re-subscribes after reconnect', async () => {
      const topic = `${broker().prefix}topic.${uniqueId()}`;
      const otherTopic = `${topic}.other`;
      const [a, b, c, pub] = await Promise.all([
        connected('a'),
        connected('b'),
        connected('c'),
        connected('pub'),
      ]);
      const ca = collector({ autoAck: true });
      const cb = collector({ autoAck: true });
      const cc = collector({ autoAck: true });
      await Promise.all([
        a.subscribe(topic, {}, ca.handler).ready,
        b.subscribe(topic, {}, cb.handler).ready,
        c.subscribe(otherTopic, {}, cc.handler).ready,
      ]);
      await pub.publish([message(toTopic(topic), 'one')]);
      await pub.publish([message(toTopic(otherTopic), 'marker')]);
      await Promise.all([ca.waitFor(1), cb.waitFor(1), cc.waitFor(1)]);

      const reconnected = [a, b, c, pub].map((t) =>
        once(t, 'transport:connected', { signal: AbortSignal.timeout(10_000) }),
      );
      await broker().dropConnections();
      await Promise.all(reconnected);
      // Re-subscription is asynchronous after the reconnect: publish until a and b got it (topic messages published
      // before the exclusive queue is re-bound are lost by design).
      await waitFor(
        async () => {
          if (ca.deliveries.length < 2 || cb.deliveries.length < 2) {
            await pub.publish([message(toTopic(topic), 'two')]);
            await elapse(20);
          }
          return ca.deliveries.length >= 2 && cb.deliveries.length >= 2;
        },
        10_000,
        're-subscription',
      );
      await pub.publish([message(toTopic(topic), 'three'), message(toTopic(otherTopic), 'marker2')]);
      await Promise.all([ca.waitFor(3), cb.waitFor(3), cc.waitFor(2)]);
      for (const col of [ca, cb]) {
        const texts = col.deliveries.map((d) => d.body.toString());
        expect(texts[0]).to.equal('one');
        expect(texts.at(-1)).to.equal('three');
        expect(texts.filter((x) => x === 'three')).to.have.length(1);
        for (const d of col.deliveries) expect(d.queue).to.equal(topic);
      }
      expect(cc.deliveries.map((d) => d.body.toString())).to.deep.equal(['marker', 'marker2']);
    });

    it('after a reconnect, transport:consuming follows once the subscription is back: a topic message published then is delivered', async () => {
      const topic = `${broker().prefix}topic.${uniqueId()}`;
      const [t, pub] = await Promise.all([connected('sub'), connected('pub')]);
      const c = collector({ autoAck: true });
      await t.subscribe(topic, {}, c.handler).ready;
      const events: string[] = [];
      t.on('transport:connected', () => events.push('connected'));
      const consuming = once(t, 'transport:consuming', { signal: AbortSignal.timeout(20_000) });
      const pubBack = once(pub, 'transport:connected', { signal: AbortSignal.timeout(20_000) });
      await broker().dropConnections();
      const [event] = (await consuming) as [{ reconnect: boolean }];
      events.push('consuming');
      expect(event.reconnect).to.equal(true);
      expect(events).to.deep.equal(['connected', 'consuming']);
      await pubBack;
      // Published once, no retry: the exclusive queue is bound again by now.
      await pub.publish([message(toTopic(topic), 'after')]);
      expect((await c.waitFor(1, 5000)).map((d) => d.body.toString())).to.deep.equal(['after']);
    });

    it('counts redeliveries of a topic message (a classic queue, where RabbitMQ gives no count)', async () => {
      const topic = `${broker().prefix}topic.${uniqueId()}`;
      const t = await connected('sub');
      const c = collector();
      await t.subscribe(topic, {}, c.handler).ready;
      await t.publish([message(toTopic(topic), 'again')]);
      for (let i = 0; i < 3; i++) {
        const d = (await c.waitFor(i + 1))[i]!;
        expect([d.body.toString(), d.deliveryCount, d.redelivered]).to.deep.equal(['again', i, i > 0]);
        if (i < 2) d.reject(true);
        else d.ack();
      }
    });

    it('drops a topic message nobody subscribed to', async () => {
      const t = await connected('node');
      await t.publish([message(toTopic(`${broker().prefix}nobody.${uniqueId()}`), 'lost')]);
    });
  });

  describe('TTL', () => {
    it('never delivers a message whose TTL expired in the queue', async () => {
      const t = await connected('node');
      const q = queueName('ttl');
      await t.publish([
        message(toQueue(q), 'expires', { expiration: 50, persistent: false }),
        message(toQueue(q), 'stays'),
      ]);
      await elapse(200); // the TTL must pass
      const c = collector({ autoAck: true });
      await t.consume(q, { prefetch: 5 }, c.handler).ready;
      await c.waitFor(1);
      await elapse(100);
      expect(c.deliveries.map((d) => d.body.toString())).to.deep.equal(['stays']);
    });
  });

  describe('connection loss', () => {
    it('fails publishes fast with TRANSPORT_UNAVAILABLE while disconnected, and before connect()', async () => {
      const idle = broker().createTransport(`idle.${uniqueId()}`);
      transports.push(idle);
      const early = await rejectionOf(idle.publish([message(toQueue(queueName('x')), 'x')]));
      expect(early).to.be.instanceOf(TransportError).with.property('code', ErrorCode.TRANSPORT_UNAVAILABLE);

      const t = await connected('node', { reconnect: { initialMs: 300, maxMs: 300 } });
      const q = queueName('disconnected');
      const failed = new Promise<{ error: Error; ms: number }>((resolve) => {
        t.once('transport:disconnected', () => {
          const start = Date.now();
          t.publish([message(toQueue(q), 'x')]).then(
            () => resolve({ error: new Error('publish succeeded'), ms: 0 }),
            (error: Error) => resolve({ error, ms: Date.now() - start }),
          );
        });
      });
      await broker().dropConnections();
      const { error, ms } = await failed;
      expect(error).to.be.instanceOf(TransportError).with.property('code', ErrorCode.TRANSPORT_UNAVAILABLE);
      expect(ms).to.be.below(100);
      await once(t, 'transport:connected', { signal: AbortSignal.timeout(10_000) });
      await t.publish([message(toQueue(q), 'after')]);
    });

    it('keeps the deliveryCount (and the queue head) across a connection drop, and drops a stale ack', async () => {
      const t = await connected('node');
      const q = queueName('drop');
      await t.publish([message(toQueue(q), 'A'), message(toQueue(q), 'B')]);
      const c = collector();
      await t.consume(q, { prefetch: 1 }, c.handler).ready;
      const [old] = await c.waitFor(1);
      expect([old!.body.toString(), old!.deliveryCount]).to.deep.equal(['A', 0]);
      const errors: Error[] = [];
      t.on('transport:error', ({ error }) => errors.push(error));
      await broker().dropConnections();
      const again = (await c.waitFor(2, 10_000))[1]!;
      expect([again.body.toString(), again.deliveryCount, again.redelivered]).to.deep.equal(['A', 1, true]);
      old!.ack(); // stale: must neither throw nor ack `again` (same delivery tag on the new channel)
      again.reject(true); // would be an unknown tag (channel error) had the stale ack hit the new channel
      const third = (await c.waitFor(3))[2]!;
      expect([third.body.toString(), third.deliveryCount]).to.deep.equal(['B', 0]);
      third.ack();
      const fourth = (await c.waitFor(4))[3]!;
      expect([fourth.body.toString(), fourth.deliveryCount]).to.deep.equal(['A', 2]);
      fourth.ack();
      await elapse(50);
      expect(errors).to.deep.equal([]);
    });

    it('re-establishes consumers after dropConnections() and loses no confirmed message', async () => {
      const producer = await connected('producer');
      const consumerTransport = await connected('consumer');
      const q = queueName('noloss');
      const received = new Set<string>();
      await consumerTransport.consume(q, { prefetch: 20 }, (d) => {
        received.add(d.properties.messageId);
        d.ack();
      }).ready;
      const K = 300;
      const ids = Array.from({ length: K }, (_, i) => `m${i}`);
      const reconnects = [producer, consumerTransport].map((t) =>
        once(t, 'transport:connected', { signal: AbortSignal.timeout(20_000) }),
      );
      // RabbitMQ closes a connection some time after `rabbitmqctl` returns: wait for the producer to see it, or
      // the last third could all be confirmed before it (no failed publish: flaky under load).
      const producerLost = once(producer, 'transport:disconnected', { signal: AbortSignal.timeout(20_000) });
      let drop: Promise<void> | undefined;
      let failures = 0;
      for (let i = 0; i < K; i++) {
        // Drop while publishing; by two thirds make sure the drop has happened (RabbitMQ's CLI is slow).
        if (i === K / 3) drop = broker().dropConnections();
        if (i === (2 * K) / 3) {
          await drop;
          await producerLost;
        }
        // Retry until confirmed, with the same message id (receivers de-duplicate).
        for (;;) {
          try {
            await producer.publish([message(toQueue(q), ids[i]!, { messageId: ids[i]! })]);
            break;
          } catch (error) {
            expect(error).to.be.instanceOf(TransportError);
            failures++;
            await elapse(20);
          }
        }
      }
      await Promise.all(reconnects); // both really lost their connections and came back
      expect(failures).to.be.greaterThan(0);
      await waitFor(() => received.size === K, 15_000, `all ${K} ids (have ${received.size})`);
      expect([...received].sort()).to.deep.equal([...ids].sort());
    });
  });

  describe('backstop', () => {
    it('dead-letters a message over the delivery limit with reason delivery_limit', async () => {
      const t = await connected('node');
      const q = queueName('backstop');
      const dlq = `DLQ.${q}`;
      await t.assertQueue(dlq);
      await broker().setBackstop(q, { deliveryLimit: 1, deadLetterQueue: dlq });
      await t.publish([message(toQueue(q), 'poison', { headers: { mats_TraceId: 't1' } })]);
      const c = collector();
      await t.consume(q, { prefetch: 1 }, (d) => {
        c.handler(d);
        d.reject(true);
      }).ready;
      await waitFor(async () => (await broker().queueDepth(dlq)) === 1, 10_000, 'dead letter');
      expect(c.deliveries.map((d) => d.deliveryCount)).to.deep.equal([0, 1]);
      const [dead] = await broker().drainQueue(dlq, 1);
      expect(dead!.body.toString()).to.equal('poison');
      expect(dead!.properties.headers).to.include({
        mats_TraceId: 't1',
        'x-first-death-reason': 'delivery_limit',
        'x-first-death-queue': q,
      });
    });
  });

  describe('close()', () => {
    it('is idempotent, rejects later calls with TRANSPORT_CLOSED and rejects pending ready', async () => {
      const t = await connected('node');
      const q = queueName('close');
      const consumer = t.consume(q, { prefetch: 1 }, () => {});
      await consumer.ready;
      const p1 = t.close();
      const p2 = t.close();
      expect(p1).to.equal(p2);
      await p1;
      expect(t.state).to.equal('closed');
      const error = await rejectionOf(t.publish([message(toQueue(q), 'x')]));
      expect(error).to.be.instanceOf(TransportError).with.property('code', ErrorCode.TRANSPORT_CLOSED);
      expect(await rejectionOf(t.connect())).to.have.property('code', ErrorCode.TRANSPORT_CLOSED);
      const late = t.consume(q, { prefetch: 1 }, () => {});
      expect(await rejectionOf(late.ready)).to.have.property('code', ErrorCode.TRANSPORT_CLOSED);
    });
  });
});
