import { expect } from 'chai';
import { WebSocket } from 'ws';
import type { MatsSocketClient } from '../../../src/client/MatsSocketClient.ts';
import type { WebSocketConstructor } from '../../../src/client/WebSocketLike.ts';
import { createTestDatabase, dialectLabel, type TestDatabase } from '../../../harness/databases.ts';
import { runId } from '../../../harness/runState.ts';
import { requireService, serviceUrls } from '../../../harness/services.ts';
import { createTestBroker, type TestBroker } from '../../../harness/transports.ts';
import { ChildProgram } from '../../helpers/childProgram.ts';
import { eventually, freePorts, nextEvent, TerminatorInbox, useClientPool } from '../../helpers/clientKit.ts';

/** The example configuration: its endpoints and terminator are declared nowhere else. */
const CONFIG = 'examples/gateway/matssocket.yaml';
const BACKEND = 'examples/gateway/backend.js';

/** The S2C envelopes of one type on the wire, per trace id, by distinct smid: a redelivery of one is not a second. */
class WireLog {
  readonly #smids = new Map<string, Set<string>>();

  constructorFor(): WebSocketConstructor {
    const record = (e: Record<string, unknown>): void => {
      if (typeof e.smid !== 'string' || typeof e.tid !== 'string') return;
      const key = `${String(e.t)} ${e.tid}`;
      let set = this.#smids.get(key);
      if (!set) this.#smids.set(key, (set = new Set()));
      set.add(e.smid);
    };
    return class RecordingWebSocket extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols);
        this.addEventListener('message', (event) => {
          if (typeof event.data !== 'string') return;
          const frame: unknown = JSON.parse(event.data);
          if (Array.isArray(frame)) for (const e of frame as Record<string, unknown>[]) record(e);
        });
      }
    };
  }

  /** How many distinct messages of `type` with trace id `tid` reached the client. */
  count(type: string, tid: string): number {
    return this.#smids.get(`${type} ${tid}`)?.size ?? 0;
  }
}

for (const dialect of ['sqlite', 'mysql'] as const) {
  describe(`matssocket-ts serve: a gateway node from ${CONFIG} [RabbitMQ + ${dialectLabel[dialect]}]`, function () {
    this.timeout(60_000);
    const pool = useClientPool();
    const children: ChildProgram[] = [];
    let broker: TestBroker | undefined;
    let db: TestDatabase | undefined;
    let port = 0;

    before(async function () {
      await requireService(this, 'rabbitmq');
      if (dialect === 'mysql') await requireService(this, 'mariadb');
      broker = await createTestBroker('rabbitmq');
      db = await createTestDatabase(dialect);
      port = (await freePorts(1))[0]!;
    });

    afterEach(async function () {
      this.timeout(30_000);
      // Gracefully, as an operator stops a node; killed only if that fails.
      await Promise.all(
        children.splice(0).map(async (c) => {
          c.signal('SIGTERM');
          await c.waitForExit(20_000).catch(() => c.kill());
        }),
      );
    });

    after(async function () {
      this.timeout(30_000);
      await broker?.close();
      await db?.drop();
    });

    /** The gateway as its users run it: the CLI on the example file, the environment overriding the file. */
    async function startGateway(): Promise<ChildProgram> {
      const gateway = new ChildProgram(
        process.execPath,
        ['--import', 'tsx', 'src/cli/matssocketCli.ts', 'serve', '--config', CONFIG],
        {
          MATSSOCKET_BROKER_URL: serviceUrls.rabbitmq,
          MATSSOCKET_BROKER_QUEUE_PREFIX: broker!.prefix,
          MATSSOCKET_DATABASE_URL: db!.url,
          MATSSOCKET_LISTEN_PORT: String(port),
          MATSSOCKET_NODE_NAME: `gw-${runId}-${dialect}`,
          MATSSOCKET_STOP_GRACE_MS: '500',
          MATSSOCKET_LOG_LEVEL: 'info',
        },
      );
      children.push(gateway);
      await gateway.waitForLine(/MatsSocket gateway ready/, 40_000);
      return gateway;
    }

    function startBackend(): ChildProgram {
      const backend = new ChildProgram(process.execPath, [BACKEND], {
        MATSSOCKET_BROKER_URL: serviceUrls.rabbitmq,
        MATSSOCKET_BROKER_QUEUE_PREFIX: broker!.prefix,
      });
      children.push(backend);
      return backend;
    }

    async function stopGracefully(program: ChildProgram): Promise<void> {
      program.signal('SIGTERM');
      expect((await program.waitForExit(20_000)).code, program.stderr.join('\n')).to.equal(0);
    }

    function client(wire: WireLog, user = 'alice'): MatsSocketClient {
      return pool.create(`ws://127.0.0.1:${port}/matssocket`, user, { webSocket: wire.constructorFor() });
    }

    const handled = (backend: ChildProgram, endpoint: string, tid: string): number =>
      backend.stdout.filter((l) => l === `backend handled ${endpoint} ${JSON.stringify(tid)}`).length;

    it('a backend in another process serves a queue declared only in the file: the reply and a push arrive once', async () => {
      await startGateway();
      const backend = startBackend();
      await backend.waitForLine(/backend ready/);
      const wire = new WireLog();
      const c = client(wire);
      const events = new TerminatorInbox(c, 'Shop.orderEvents');
      const tid = `serve-${runId}`;
      const reply = await c.request<{ orderId: string; item: string; status: string }>(
        'Shop.placeOrder',
        tid,
        {
          item: 'book',
        },
      );
      expect(reply.data).to.include({ item: 'book', status: 'placed' });
      const [event] = await events.waitFor(1, 10_000);
      expect(event!.data).to.deep.equal({ orderId: reply.data.orderId, status: 'confirmed' });
      // A later round trip on the same session: anything stored before it for this session was delivered before it.
      await c.request('Shop.quote', `${tid}-barrier`, { item: 'pen' });
      expect(wire.count('RESOLVE', tid)).to.equal(1);
      expect(wire.count('SEND', tid)).to.equal(1);
      expect(events.messages).to.have.length(1);
      expect(handled(backend, 'Orders.placeOrder', tid)).to.equal(1);
    });

    it('topic rules of the file decide subscriptions', async () => {
      await startGateway();
      const c = client(new WireLog(), 'alice:support');
      const outcome = async (topicId: string): Promise<string> => {
        const event = nextEvent(c, 'subscription', (e) => e.topicId === topicId, 10_000);
        c.subscribe(topicId, () => undefined);
        return (await event).type;
      };
      expect(await outcome('prices.book')).to.equal('OK');
      expect(await outcome('orders.alice.o-1')).to.equal('OK');
      expect(await outcome('orders.bob.o-1')).to.equal('NOT_AUTHORIZED');
      expect(await outcome('support.queue')).to.equal('OK');
      expect(await outcome('unlisted.topic')).to.equal('NOT_AUTHORIZED');
    });

    it('a request in flight across a node restart: the backend replies while the node is down, the client gets it once', async () => {
      const first = await startGateway();
      const wire = new WireLog();
      const c = client(wire);
      const tid = `restart-${runId}`;
      const reply = c.request<{ item: string; status: string }>('Shop.placeOrder', tid, { item: 'lamp' });
      // Forwarded and waiting for a backend: no backend runs yet.
      const requestQueue = `${broker!.prefix}Orders.placeOrder:i`;
      await eventually(async () => (await broker!.queueDepth(requestQueue)) === 1, {
        timeoutMs: 10_000,
        what: `the forwarded request in ${requestQueue}`,
      });
      await stopGracefully(first);

      const backend = startBackend();
      await backend.waitForLine(new RegExp(`backend handled Orders\\.placeOrder "${tid}"`), 20_000);
      // The reply waits in the node's reply queue (the only node: queue 0): no node consumes it now.
      const replyQueue = `${broker!.prefix}MatsSocket.Shop.replyHandler.0:i`;
      await eventually(async () => (await broker!.queueDepth(replyQueue)) === 1, {
        timeoutMs: 5000,
        what: `the backend's reply in ${replyQueue}`,
      });

      await startGateway();
      const answered = await reply;
      expect(answered.data).to.include({ item: 'lamp', status: 'placed' });
      await c.request('Shop.quote', `${tid}-barrier`, { item: 'pen' });
      expect(wire.count('RESOLVE', tid)).to.equal(1);
      expect(handled(backend, 'Orders.placeOrder', tid)).to.equal(1);
    });
  });
}

describe('matssocket-ts check', function () {
  this.timeout(30_000);

  it('prints every problem with file, line and path, and exits 1', async () => {
    const check = new ChildProgram(
      process.execPath,
      ['--import', 'tsx', 'src/cli/matssocketCli.ts', 'check', '--config', CONFIG],
      { MATSSOCKET_LISTEN_PORT: 'eighty', MATSSOCKET_LISTEN_HOST: '0.0.0.0' },
    );
    const exit = await check.waitForExit();
    expect(exit.code).to.equal(1);
    const text = check.stderr.join('\n');
    expect(text).to.match(
      /examples\/gateway\/matssocket\.yaml:\d+: auth\.type: insecure-dev lets anyone be any user/,
    );
    expect(text).to.contain('MATSSOCKET_LISTEN_PORT: listen.port: must be an integer 0..65535');
    expect(text).to.contain('[CONFIG_INVALID]');
  });

  it('accepts the example file and exits 0', async () => {
    const check = new ChildProgram(
      process.execPath,
      ['--import', 'tsx', 'src/cli/matssocketCli.ts', 'check', '--config', CONFIG],
      {},
    );
    expect((await check.waitForExit()).code).to.equal(0);
    expect(check.stdout.join('\n')).to.contain('valid');
  });
});
