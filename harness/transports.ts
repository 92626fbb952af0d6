import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { AmqpAdmin, AmqpTransport } from '../src/broker/AmqpTransport.ts';
import type { AmqpTransportOptions } from '../src/broker/AmqpTransportOptions.ts';
import { InMemoryBroker, type BackstopOptions } from '../src/broker/InMemoryBroker.ts';
import { InMemoryTransport } from '../src/broker/InMemoryTransport.ts';
import { ErrorCode } from '../src/errors.ts';
import type { MessageProperties, Transport } from '../src/broker/Transport.ts';
import type { PrivateRabbitMq } from './PrivateRabbitMq.ts';
import { runId } from './runState.ts';
import { requireService, serviceUrls } from './services.ts';

export type TransportKind = 'inmemory' | 'rabbitmq';

export const transportLabel: Record<TransportKind, string> = { inmemory: 'in-memory', rabbitmq: 'RabbitMQ' };

/** Options a test may override on a transport (the name is always the suite's prefix + the given name). */
/** AMQP transport options of a test transport; `url` (e.g. a proxy in front of the broker) defaults to the service's. */
export type TestTransportOptions = Partial<Omit<AmqpTransportOptions, 'name'>>;

export interface DrainedTestMessage {
  body: Buffer;
  properties: MessageProperties;
  deliveryCount: number;
}

export interface TestBroker {
  kind: TransportKind;
  /** Unique per suite, e.g. `test.<runId>.<n>.`; the Mats layer uses it as its queue prefix. */
  prefix: string;
  /**
   * A new transport (one node's connections) on this broker, named `${prefix}${name}`, with the pub/sub exchange
   * `${prefix}pubsub` and fast test timings (confirm timeout 2 s, reconnect backoff from 50 ms up to 500 ms, close
   * timeout 1 s). Not connected yet. Closed by `close()`.
   */
  createTransport(name: string, options?: TestTransportOptions): Transport;
  /**
   * Forcibly drops every connection of this suite's transports from the broker side, as a crash would; with
   * `transportName`, only that transport's (the name given to {@link createTransport}).
   */
  dropConnections(transportName?: string): Promise<void>;
  /** Number of messages ready in a queue (0 if it does not exist). */
  queueDepth(queue: string): Promise<number>;
  /** Gets and acks up to `max` messages of a queue (for DLQ content assertions). */
  drainQueue(queue: string, max?: number): Promise<DrainedTestMessage[]>;
  /** Deletes a queue behind the transports' backs (to provoke an unroutable publish). */
  deleteQueue(queue: string): Promise<void>;
  /** Declares a classic (non-quorum) durable queue, so a transport's quorum declare of it fails with a 406. */
  declareClassicQueue(queue: string): Promise<void>;
  /** Sets the broker backstop (delivery limit + dead-letter queue) on one queue; the DLQ must be declared. */
  setBackstop(queue: string, backstop: BackstopOptions): Promise<void>;
  /**
   * Whether {@link blockPublishing} is available: on the in-memory broker and on a private RabbitMQ node, never on
   * the shared RabbitMQ (a memory alarm there would block every other test and worker on the machine).
   */
  readonly canBlock: boolean;
  /**
   * Raises the broker's memory alarm until {@link unblockPublishing}; resolves once it is in effect: every connection
   * that publishes from then on is blocked (`connection.blocked`), its publishes stay unconfirmed.
   */
  blockPublishing(): Promise<void>;
  unblockPublishing(): Promise<void>;
  /** Closes every transport it created and deletes the queues/exchange this suite created (RabbitMQ). */
  close(): Promise<void>;
}

let suiteCounter = 0;

/** Fast timings for tests; each overridable per transport. */
export const testTransportTimings = {
  confirmTimeoutMs: 2000,
  reconnect: { initialMs: 50, factor: 2, maxMs: 500, jitter: 0.2 },
  closeTimeoutMs: 1000,
} as const satisfies TestTransportOptions;

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

const execFileAsync = promisify(execFile);

/** `rabbitmqctl -q ...args` against the shared node. */
async function rabbitmqctl(...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('rabbitmqctl', ['-q', ...args], { timeout: 30_000 });
  return stdout;
}

/** The RabbitMQ node a test broker works on: the shared one, or a private node of the suite. */
interface RabbitTarget {
  url: string;
  ctl: (...args: string[]) => Promise<string>;
  server: PrivateRabbitMq | undefined;
}

/** An {@link AmqpAdmin} connection made on first use, and again after {@link close} or a failed connect. */
function reconnectingAdmin(
  url: string,
  name: string,
): { admin(): Promise<AmqpAdmin>; close(): Promise<void> } {
  let current: Promise<AmqpAdmin> | undefined;
  return {
    admin: () =>
      (current ??= AmqpAdmin.connect(url, name).catch((error: unknown) => {
        current = undefined;
        throw error;
      })),
    async close() {
      const a = current;
      current = undefined;
      await (await a?.catch(() => undefined))?.close();
    },
  };
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

async function createRabbitTestBroker(prefix: string, target: RabbitTarget): Promise<TestBroker> {
  const { url, ctl: rabbitmqctl, server } = target;
  // Not named with the prefix, so dropConnections() leaves it alone.
  const admins = reconnectingAdmin(url, `admin.${prefix}`);
  await admins.admin();
  // A private node may have been restarted since the last call, and the admin connection with it: one retry on a
  // fresh connection when not even a channel could be opened.
  const withAdmin = async <T>(op: (a: AmqpAdmin) => Promise<T>): Promise<T> => {
    try {
      return await op(await admins.admin());
    } catch (error) {
      if (!server || (error as { code?: unknown }).code !== ErrorCode.TRANSPORT_UNAVAILABLE) throw error;
      await admins.close();
      return op(await admins.admin());
    }
  };
  const admin = {
    queueDepth: (q: string) => withAdmin((a) => a.queueDepth(q)),
    drainQueue: (q: string, max?: number) => withAdmin((a) => a.drainQueue(q, max)),
    deleteQueue: (q: string) => withAdmin((a) => a.deleteQueue(q)),
    declareQueue: (q: string, kind: 'quorum' | 'classic') => withAdmin((a) => a.declareQueue(q, kind)),
    deleteExchange: (e: string) => withAdmin((a) => a.deleteExchange(e)),
  };
  const transports: AmqpTransport[] = [];
  const policies: string[] = [];

  async function queuesOfSuite(): Promise<string[]> {
    const out = await rabbitmqctl('list_queues', '--no-table-headers', 'name');
    return out
      .split('\n')
      .map((l) => l.trim())
      .filter((n) => n.includes(prefix));
  }

  return {
    kind: 'rabbitmq',
    prefix,
    canBlock: server !== undefined,
    createTransport(name, options = {}) {
      const t = new AmqpTransport({
        ...testTransportTimings,
        exchange: `${prefix}pubsub`,
        ...options,
        url: options.url ?? url,
        name: `${prefix}${name}`,
      });
      transports.push(t);
      return t;
    },
    async dropConnections(transportName = '') {
      // One `rabbitmqctl eval` (a single CLI VM start, ~1-2 s) instead of list_connections + a close_connection per
      // connection; closes exactly the connections whose client-provided name starts with the suite prefix (and
      // the transport name, if given).
      // Each close is caught: close_connection checks that the connection is registered, then gen_server:calls its
      // reader; a reader that ends in between (its client closing this connection because we just dropped its
      // other one, or a transport of the previous test closing) made the call exit `noproc`, which aborted the
      // whole eval with the remaining connections still open (flaky S31). Not waiting for the readers to end: tests
      // rely on this resolving while the clients are still reconnecting.
      const namePrefix = `${prefix}${transportName}`;
      if (!/^[\w.-]+$/.test(namePrefix)) throw new Error(`unsafe name prefix ${namePrefix}`);
      const code = [
        `Prefix = <<"${namePrefix}">>,`,
        'Pids = [proplists:get_value(pid, I) || I <- rabbit_networking:connection_info_all([pid, client_properties]),',
        '  case lists:keyfind(<<"connection_name">>, 1, proplists:get_value(client_properties, I, [])) of',
        '    {_, longstr, N} -> binary:longest_common_prefix([N, Prefix]) =:= byte_size(Prefix);',
        '    _ -> false',
        '  end],',
        '[catch rabbit_networking:close_connection(P, "test: dropConnections()") || P <- Pids],',
        'length(Pids).',
      ].join(' ');
      await rabbitmqctl('eval', code);
    },
    queueDepth: (queue) => admin.queueDepth(queue),
    drainQueue: (queue, max) => admin.drainQueue(queue, max),
    deleteQueue: (queue) => admin.deleteQueue(queue),
    declareClassicQueue: (queue) => admin.declareQueue(queue, 'classic'),
    async setBackstop(queue, backstop) {
      const policy = `${prefix}backstop.${policies.length}`;
      policies.push(policy);
      const definition = JSON.stringify({
        'delivery-limit': backstop.deliveryLimit,
        'dead-letter-exchange': '',
        'dead-letter-routing-key': backstop.deadLetterQueue,
      });
      await rabbitmqctl(
        'set_policy',
        '--apply-to',
        'queues',
        '--priority',
        '100',
        policy,
        `^${escapeRegExp(queue)}$`,
        definition,
      );
      // Policies apply asynchronously: wait until an existing queue shows it.
      const deadline = Date.now() + 10_000;
      for (;;) {
        const rows = (await rabbitmqctl('list_queues', '--no-table-headers', 'name', 'policy')).split('\n');
        const row = rows.map((r) => r.split('\t')).find((cols) => cols[0] === queue);
        if (!row || row[1] === policy) return;
        if (Date.now() > deadline) throw new Error(`policy ${policy} not applied to ${queue}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    blockPublishing() {
      if (!server) {
        return Promise.reject(
          new Error('no memory alarm on the shared RabbitMQ (canBlock = false): use a private node'),
        );
      }
      return server.raiseMemoryAlarm();
    },
    unblockPublishing() {
      return server ? server.clearMemoryAlarm() : Promise.resolve();
    },
    async close() {
      await Promise.all(transports.map((t) => t.close()));
      try {
        // A private node goes away whole with its directory; only the shared one needs tidying.
        if (!server) {
          for (const q of await queuesOfSuite()) await admin.deleteQueue(q);
          await admin.deleteExchange(`${prefix}pubsub`);
          for (const p of policies) await rabbitmqctl('clear_policy', p);
        }
      } finally {
        await admins.close();
      }
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
  const target: RabbitTarget = server
    ? { url: server.url, ctl: (...args) => server.ctl(...args), server }
    : { url: serviceUrls.rabbitmq, ctl: rabbitmqctl, server: undefined };
  return createRabbitTestBroker(prefix, target);
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
