import { once } from 'node:events';
import { expect } from 'chai';
import { InMemoryBroker } from '../../../src/broker/InMemoryBroker.ts';
import { InMemoryTransport } from '../../../src/broker/InMemoryTransport.ts';
import { ConfigError, ErrorCode, TransportError } from '../../../src/errors.ts';
import {
  collector,
  elapse,
  message,
  rejectionOf,
  toQueue,
  waitFor,
} from '../../integration/broker/transportTestUtil.ts';

/** InMemoryTransport behaviour reachable only through the in-memory broker's fault injection. */
describe('InMemoryTransport', () => {
  let broker: InMemoryBroker;
  let transports: InMemoryTransport[];
  const create = (name: string, extra: Partial<ConstructorParameters<typeof InMemoryTransport>[1]> = {}) => {
    const t = new InMemoryTransport(broker, {
      name,
      exchange: 'x',
      confirmTimeoutMs: 500,
      reconnect: { initialMs: 20, maxMs: 100 },
      closeTimeoutMs: 200,
      ...extra,
    });
    transports.push(t);
    return t;
  };

  beforeEach(() => {
    broker = new InMemoryBroker();
    transports = [];
  });
  afterEach(async () => {
    await Promise.all(transports.map((t) => t.close()));
  });

  it('validates its options with ConfigError naming the field', () => {
    expect(() => create(''))
      .to.throw(ConfigError)
      .with.property('field', 'name');
    expect(() => create('n', { confirmTimeoutMs: 0 }))
      .to.throw(ConfigError)
      .with.property('field', 'confirmTimeoutMs');
    expect(() => create('n', { reconnect: { jitter: 2 } }))
      .to.throw(ConfigError)
      .with.property('field', 'reconnect.jitter');
    expect(() => create('n', { exchange: 'amq.direct' }))
      .to.throw(ConfigError)
      .with.property('field', 'exchange');
  });

  it('names its connections <name>-consume and <name>-publish', async () => {
    const t = create('node1');
    await t.connect();
    await t.connect(); // idempotent
    expect(broker.connections.map((c) => c.name).sort()).to.deep.equal(['node1-consume', 'node1-publish']);
  });

  it('rejects connect() with TRANSPORT_UNAVAILABLE when the broker is down, and can connect later', async () => {
    broker.setAvailable(false);
    const t = create('n');
    const error = await rejectionOf(t.connect());
    expect(error).to.be.instanceOf(TransportError).with.property('code', ErrorCode.TRANSPORT_UNAVAILABLE);
    expect(t.state).to.equal('idle');
    broker.setAvailable(true);
    await t.connect();
    expect(t.state).to.equal('connected');
  });

  it('keeps retrying with backoff while the broker refuses connections, then re-establishes consumers', async () => {
    const t = create('n');
    await t.connect();
    const c = collector({ autoAck: true });
    await t.consume('q', { prefetch: 1 }, c.handler).ready;
    broker.setAvailable(false);
    const disconnected = once(t, 'transport:disconnected');
    broker.dropConnections();
    await disconnected;
    expect(t.state).to.equal('reconnecting');
    await elapse(100); // several refused attempts
    expect(t.state).to.equal('reconnecting');
    const connected = once(t, 'transport:connected');
    broker.setAvailable(true);
    const [info] = (await connected) as [{ reconnect: boolean }];
    expect(info.reconnect).to.equal(true);
    await t.publish([message(toQueue('q'), 'after')]);
    await c.waitFor(1);
  });

  it('fails a nacked publish with TRANSPORT_NACKED', async () => {
    const t = create('n');
    await t.connect();
    broker.nackNextConfirms(1);
    const error = await rejectionOf(t.publish([message(toQueue('q'), 'a'), message(toQueue('q'), 'b')]));
    expect(error).to.be.instanceOf(TransportError).with.property('code', ErrorCode.TRANSPORT_NACKED);
    expect(broker.queueDepth('q')).to.equal(1); // the other one of the batch went through
  });

  it('fails a publish whose confirm is late with TRANSPORT_CONFIRM_TIMEOUT', async () => {
    const t = create('n', { confirmTimeoutMs: 50 });
    await t.connect();
    await t.assertQueue('q');
    broker.delayNextConfirms(1, 150);
    const error = await rejectionOf(t.publish([message(toQueue('q'), 'a')]));
    expect(error).to.be.instanceOf(TransportError).with.property('code', ErrorCode.TRANSPORT_CONFIRM_TIMEOUT);
    await broker.waitIdle([], 1000);
  });

  it('re-creates a consumer whose queue was deleted (server-side cancel) and reports it', async () => {
    const t = create('n');
    await t.connect();
    const c = collector({ autoAck: true });
    await t.consume('q', { prefetch: 1 }, c.handler).ready;
    const errored = once(t, 'transport:error');
    broker.deleteQueue('q');
    const [{ error }] = (await errored) as [{ error: Error }];
    expect(error).to.have.property('code', ErrorCode.TRANSPORT_CHANNEL_CLOSED);
    await waitFor(() => broker.hasQueue('q'), 2000, 'queue re-declared by the consumer');
    await t.publish([message(toQueue('q'), 'again')]);
    await c.waitFor(1);
  });

  it('fails the first start of a consumer (ready rejects) when its queue exists with another kind', async () => {
    const t = create('n');
    await t.connect();
    const admin = await (await broker.connect('admin')).createChannel();
    await admin.assertQueue('classic', { kind: 'classic' });
    const consumer = t.consume('classic', { prefetch: 1 }, () => {});
    const error = await rejectionOf(consumer.ready);
    expect(error).to.have.property('code', ErrorCode.TRANSPORT_PRECONDITION_FAILED);
    expect(() => t.consume('q', { prefetch: 0 }, () => {}))
      .to.throw(ConfigError)
      .with.property('field', 'prefetch');
  });

  it('closes a cancelled consumer’s channel once its last unacked delivery is settled', async () => {
    const t = create('n');
    await t.connect();
    await t.publish([message(toQueue('q'), 'a')]);
    const c = collector();
    const consumer = t.consume('q', { prefetch: 1 }, c.handler);
    await c.waitFor(1);
    await consumer.cancel();
    expect(broker.unackedCount()).to.equal(1);
    c.deliveries[0]!.ack();
    expect(broker.unackedCount()).to.equal(0);
    expect(broker.queueDepth('q')).to.equal(0);
  });

  it('forwards blocked/unblocked from the publish connection (blocked once it publishes during the alarm)', async () => {
    const t = create('n', { confirmTimeoutMs: 100 });
    await t.connect();
    await t.assertQueue('q');
    const events: string[] = [];
    t.on('transport:blocked', ({ reason }) => events.push(`blocked:${reason}`));
    t.on('transport:unblocked', () => events.push('unblocked'));
    broker.blockPublishing('low on disk');
    await new Promise((r) => setImmediate(r));
    expect(events).to.deep.equal([]);
    const failed = t
      .publish([
        {
          target: { kind: 'queue', name: 'q' },
          body: Buffer.from('x'),
          properties: { messageId: 'x', persistent: true, headers: {} },
        },
      ])
      .catch((e: Error) => e);
    await new Promise((r) => setImmediate(r));
    expect(events).to.deep.equal(['blocked:low on disk']);
    expect(await failed).to.have.property('code', 'TRANSPORT_CONFIRM_TIMEOUT');
    broker.unblockPublishing();
    expect(events).to.deep.equal(['blocked:low on disk', 'unblocked']);
  });
});
