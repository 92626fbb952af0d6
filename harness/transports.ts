import { InMemoryBroker } from '../src/broker/InMemoryBroker.ts';
import { InMemoryTransport } from '../src/broker/InMemoryTransport.ts';
import type { Transport } from '../src/broker/Transport.ts';
import type { PrivateRabbitMq } from './PrivateRabbitMq.ts';
import { createRabbitTestBroker } from './rabbitTestBroker.ts';
import { runId } from './runState.ts';
import { requireService } from './services.ts';
import { testTransportTimings, transportLabel, type TestBroker, type TransportKind } from './TestBroker.ts';

export {
  testTransportTimings,
  transportLabel,
  type DrainedTestMessage,
  type TestBroker,
  type TestTransportOptions,
  type TransportKind,
} from './TestBroker.ts';

let suiteCounter = 0;

function createInMemoryTestBroker(prefix: string): TestBroker {
  const broker = new InMemoryBroker();
  const transports: Transport[] = [];
  return {
    kind: 'inmemory',
    prefix,
    canBlock: true,
    createTransport(name, options = {}) {
      const t = new InMemoryTransport(broker, {
        ...testTransportTimings,
        exchange: `${prefix}pubsub`,
        ...options,
        name: `${prefix}${name}`,
      });
      transports.push(t);
      return t;
    },
    dropConnections(transportName = '') {
      broker.dropConnections((c) => c.name.startsWith(`${prefix}${transportName}`));
      return Promise.resolve();
    },
    queueDepth: (queue) => Promise.resolve(broker.queueDepth(queue)),
    drainQueue: (queue, max) => Promise.resolve(broker.drainQueue(queue, max)),
    deleteQueue(queue) {
      broker.deleteQueue(queue);
      return Promise.resolve();
    },
    async declareClassicQueue(queue) {
      const c = await broker.connect(`${prefix}admin`);
      try {
        const ch = await c.createChannel();
        await ch.assertQueue(queue, { kind: 'classic' });
      } finally {
        await c.close();
      }
    },
    setBackstop(queue, backstop) {
      broker.setBackstop(queue, backstop);
      return Promise.resolve();
    },
    blockPublishing() {
      broker.blockPublishing();
      return Promise.resolve();
    },
    unblockPublishing() {
      broker.unblockPublishing();
      return Promise.resolve();
    },
    async close() {
      await Promise.all(transports.map((t) => t.close()));
    },
  };
}

/**
 * Creates a broker fixture for one suite: in memory, or on RabbitMQ: the shared node, or `server`, a private node
 * (which the suite may restart, kill or put under a memory alarm).
 */
export function createTestBroker(kind: TransportKind, server?: PrivateRabbitMq): Promise<TestBroker> {
  const prefix = `test.${runId}.${++suiteCounter}.`;
  if (kind === 'inmemory') return Promise.resolve(createInMemoryTestBroker(prefix));
  return createRabbitTestBroker(prefix, server);
}

/** The transports to run against: all, or those listed in `TEST_TRANSPORTS` (e.g. `inmemory`). */
export function testTransportKinds(): TransportKind[] {
  const all: TransportKind[] = ['inmemory', 'rabbitmq'];
  const only = process.env.TEST_TRANSPORTS?.split(',').map((s) => s.trim());
  return only ? all.filter((k) => only.includes(k)) : all;
}

/**
 * `describe(`${title} [in-memory]`)` and `describe(`${title} [RabbitMQ]`)`, each with its own {@link TestBroker}
 * created in `before` (the RabbitMQ one requires the service) and closed in `after`.
 */
export function describeEachTransport(title: string, body: (broker: () => TestBroker) => void): void {
  for (const kind of testTransportKinds()) {
    describe(`${title} [${transportLabel[kind]}]`, function () {
      // rabbitmqctl (dropConnections, backstop policies) starts an Erlang VM per call: seconds on a loaded machine.
      if (kind === 'rabbitmq') this.timeout(30_000);
      let broker: TestBroker | undefined;
      before(async function () {
        if (kind === 'rabbitmq') await requireService(this, 'rabbitmq');
        broker = await createTestBroker(kind);
      });
      after(async () => {
        await broker?.close();
      });
      body(() => {
        if (!broker) throw new Error('test broker not created (before hook failed?)');
        return broker;
      });
    });
  }
}
