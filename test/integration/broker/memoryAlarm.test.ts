import { once } from 'node:events';
import { expect } from 'chai';
import type { Transport } from '../../../src/broker/Transport.ts';
import { ErrorCode, TransportError } from '../../../src/errors.ts';
import {
  requirePrivateService,
  startPrivateRabbitMq,
  type PrivateRabbitMq,
} from '../../../harness/privateServices.ts';
import {
  createTestBroker,
  testTransportKinds,
  transportLabel,
  type TestBroker,
  type TestTransportOptions,
} from '../../../harness/transports.ts';
import { collector, elapse, message, rejectionOf, toQueue, uniqueId, waitFor } from './transportTestUtil.ts';

/**
 * The Transport contract under a broker memory alarm, run unchanged against the in-memory broker and RabbitMQ. On
 * RabbitMQ the alarm is raised for real (`set_vm_memory_high_watermark absolute 1`) on a private node of this suite:
 * on the shared node it would block every other test and worker of the machine.
 */
for (const kind of testTransportKinds()) {
  describe(`Transport contract: memory alarm [${transportLabel[kind]}]`, function () {
    // rabbitmqctl starts an Erlang VM per call, and the alarm is seen by the node's memory monitor: seconds.
    if (kind === 'rabbitmq') this.timeout(30_000);
    let node: PrivateRabbitMq | undefined;
    let broker: TestBroker | undefined;
    let transports: Transport[] = [];

    before(async function () {
      if (kind === 'rabbitmq') {
        this.timeout(90_000);
        requirePrivateService(this, 'rabbitmq');
        node = await startPrivateRabbitMq();
        console.log(`      (${node.label} booted in ${node.bootMs[0]} ms)`);
      }
      broker = await createTestBroker(kind, node);
    });

    after(async () => {
      await broker?.close();
      await node?.close();
    });

    afterEach(async () => {
      await Promise.all(transports.map((t) => t.close()));
      transports = [];
      await broker?.unblockPublishing();
    });

    async function connected(name: string, options?: TestTransportOptions): Promise<Transport> {
      const t = broker!.createTransport(`${name}.${uniqueId()}`, options);
      transports.push(t);
      await t.connect();
      return t;
    }

    const queueName = (label: string): string => `${broker!.prefix}${label}.${uniqueId()}`;

    it('times out publishes with TRANSPORT_CONFIRM_TIMEOUT, reports the connection blocked, and recovers', async () => {
      const t = await connected('node', { confirmTimeoutMs: 300 });
      const q = queueName('blocked');
      await t.assertQueue(q);
      const events: string[] = [];
      t.on('transport:blocked', ({ reason }) => events.push(`blocked: ${reason}`));
      t.on('transport:unblocked', () => events.push('unblocked'));
      await broker!.blockPublishing();
      // RabbitMQ blocks a connection (and says so) when it publishes during the alarm, not when the alarm begins.
      await elapse(100);
      expect(events).to.deep.equal([]);

      const start = Date.now();
      const error = await rejectionOf(t.publish([message(toQueue(q), 'during', { messageId: 'during' })]));
      expect(error)
        .to.be.instanceOf(TransportError)
        .with.property('code', ErrorCode.TRANSPORT_CONFIRM_TIMEOUT);
      expect(Date.now() - start).to.be.within(250, 2000);
      await waitFor(() => events.length > 0, 5000, 'transport:blocked');
      expect(events).to.deep.equal(['blocked: low on memory']);
      expect(t.state).to.equal('connected');
      expect(await broker!.queueDepth(q)).to.equal(0);

      const unblocked = once(t, 'transport:unblocked', { signal: AbortSignal.timeout(10_000) });
      await broker!.unblockPublishing();
      await unblocked;
      await t.publish([message(toQueue(q), 'after', { messageId: 'after' })]);
      // What was sent during the alarm is taken once it ends: a publish reported as timed out may still arrive
      // (at least once; receivers de-duplicate by message id), and in order.
      const got = await broker!.drainQueue(q, 10);
      expect(got.map((m) => m.properties.messageId)).to.deep.equal(['during', 'after']);
      expect(events).to.deep.equal(['blocked: low on memory', 'unblocked']);
    });

    it('bounds a publish to an undeclared queue by the confirm timeout (the declare waits out the alarm too)', async () => {
      const t = await connected('node', { confirmTimeoutMs: 300 });
      await t.assertQueue(queueName('first'));
      await broker!.blockPublishing();
      const first = await rejectionOf(t.publish([message(toQueue(queueName('declared')), 'x')]));
      expect(first).to.have.property('code', ErrorCode.TRANSPORT_CONFIRM_TIMEOUT);
      // Now the connection is blocked: RabbitMQ reads nothing more from it, declares included.
      const q = queueName('undeclared');
      const start = Date.now();
      const error = await rejectionOf(t.publish([message(toQueue(q), 'y', { messageId: 'y' })]));
      expect(error).to.have.property('code', ErrorCode.TRANSPORT_CONFIRM_TIMEOUT);
      expect(Date.now() - start).to.be.within(250, 2000);
      let declared = false;
      const declare = t.assertQueue(queueName('later')).then(() => (declared = true));
      await elapse(300);
      expect(declared, 'a declare on the blocked connection during the alarm').to.equal(false);
      await broker!.unblockPublishing();
      await declare;
      // The declare and the publish go through once the alarm ends.
      await waitFor(async () => (await broker!.queueDepth(q)) === 1, 10_000, 'the late message');
      await t.publish([message(toQueue(q), 'z')]);
      expect(await broker!.queueDepth(q)).to.equal(2);
    });

    it('keeps delivering to consumers and taking their acks while publishers are blocked', async () => {
      const consumer = await connected('consumer');
      const publisher = await connected('publisher', { confirmTimeoutMs: 300 });
      const q = queueName('consume');
      await publisher.publish([1, 2, 3].map((i) => message(toQueue(q), `m${i}`)));
      await broker!.blockPublishing();
      // The publisher is blocked by its publish; the consumer's own connection never publishes.
      const blocked = await rejectionOf(publisher.publish([message(toQueue(q), 'blocked')]));
      expect(blocked).to.have.property('code', ErrorCode.TRANSPORT_CONFIRM_TIMEOUT);
      const c = collector({ autoAck: true });
      await consumer.consume(q, { prefetch: 1 }, c.handler).ready;
      const got = await c.waitFor(3, 10_000);
      expect(got.map((d) => d.body.toString())).to.deep.equal(['m1', 'm2', 'm3']);
      await waitFor(async () => (await broker!.queueDepth(q)) === 0, 10_000, 'all acked');
    });
  });
}
