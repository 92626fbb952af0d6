import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { ReplyError } from '../../src/client/clientErrors.ts';
import { ErrorCode } from '../../src/errors.ts';
import { MatsSocketClient } from '../../src/client/MatsSocketClient.ts';
import { dlqName } from '../../src/mats/MatsWire.ts';
import { fastClientTimings } from '../helpers/clientKit.ts';
import { createTestDatabase, type TestDatabase } from '../../harness/databases.ts';
import { RawClient } from '../helpers/rawClient.ts';
import {
  requireClusterServices,
  startTestCluster,
  testAuth,
  type TestCluster,
} from '../../harness/startTestCluster.ts';
import { runId } from '../../harness/runState.ts';
import { SERVER_ENVS } from '../integration/server/serverTestKit.ts';
import { testTransportKinds } from '../../harness/transports.ts';
import { BackendRuns, registerFaultEndpoints } from '../../harness/faultEndpoints.ts';
import { LoadRun, percentile, summary, until } from './LoadRun.ts';
import WebSocket from 'ws';

/** Per message pushed to the slow client, bytes of payload. */
const SLOW_MESSAGE_BYTES = 100 * 1024;
/** Messages pushed to the slow client: far more than the kernel's socket buffers hold. */
const SLOW_MESSAGES = 250;
/** Bound on what the server may buffer in user space for one stalled socket (well below the 25 MB pushed). */
const SERVER_BUFFER_BOUND = 8 * 1024 * 1024;

for (const env of SERVER_ENVS.filter((e) => testTransportKinds().includes(e.transport))) {
  describe(`Faults: slow client and poison endpoint [${env.label}]`, function () {
    this.timeout(60_000);
    let db: TestDatabase | undefined;
    let cluster: TestCluster | undefined;
    const runs = new BackendRuns();
    let extraServer: Server | undefined;
    const serverSockets: Socket[] = [];
    let extraUrl = '';
    const cleanups: (() => Promise<unknown>)[] = [];

    before(async function () {
      this.timeout(60_000);
      await requireClusterServices(this, env.transport, env.dialect);
      db = await createTestDatabase(env.dialect);
      cluster = await startTestCluster({
        nodes: 1,
        db,
        transport: env.transport,
        endpoints: registerFaultEndpoints(runs),
      });
      // A second listener on the same node whose server-side sockets the test can inspect (writableLength).
      extraServer = createServer();
      extraServer.on('connection', (s: Socket) => serverSockets.push(s));
      cluster.nodes[0]!.server.attach(extraServer, '/matssocket');
      await new Promise<void>((resolve) => extraServer!.listen(0, '127.0.0.1', resolve));
      extraUrl = `ws://127.0.0.1:${(extraServer.address() as AddressInfo).port}/matssocket`;
    });

    afterEach(async () => {
      for (const c of cleanups.splice(0)) await c();
    });

    after(async () => {
      await cluster?.stop();
      await new Promise((resolve) => (extraServer ? extraServer.close(resolve) : resolve(undefined)));
      await db?.drop();
    });

    it('a client that stops reading does not slow the others, and the server buffers a bounded amount for it', async () => {
      const node = cluster!.nodes[0]!;
      const slow = await RawClient.connect(extraUrl, { perMessageDeflate: false });
      cleanups.push(() => Promise.resolve(slow.terminate()));
      const sid = (await slow.hello(testAuth('slow'))).sid as string;
      const slowSocket = serverSockets.at(-1)!;
      slow.ws.pause();

      const payload = 'p'.repeat(SLOW_MESSAGE_BYTES);
      const pushing = (async () => {
        for (let i = 0; i < SLOW_MESSAGES; i++) {
          await node.server.send(sid, `slow-${i}`, 'ClientSide.terminator', { i, payload });
        }
      })();

      // Meanwhile the other clients work; track the server's user-space buffer for the stalled socket.
      let maxBuffered = 0;
      const sampler = setInterval(() => {
        maxBuffered = Math.max(maxBuffered, slowSocket.writableLength);
      }, 10);
      cleanups.push(() => Promise.resolve(clearInterval(sampler)));
      const load = new LoadRun({
        urls: [node.url],
        clients: 4,
        inflightPerClient: 2,
        idPrefix: `slow-${runId}`,
        authorization: testAuth('fast'),
        requestTimeoutMs: 10_000,
      });
      cleanups.push(() => load.close());
      // The pushes are written first: the other clients then measure the stalled socket's effect, not the store's.
      await pushing;
      const started = Date.now();
      load.start();
      await until(() => load.resolved >= 200, '200 replies to the other clients', 20_000);
      const acc = await load.finish();
      const elapsed = Date.now() - started;
      const pushedBytes = SLOW_MESSAGES * SLOW_MESSAGE_BYTES;
      clearInterval(sampler);
      maxBuffered = Math.max(maxBuffered, slowSocket.writableLength);

      expect(acc.lost).to.deep.equal([]);
      expect(acc.duplicateWireReplies).to.deep.equal([]);
      expect(percentile(acc.latenciesMs, 99), 'p99 of the other clients, ms').to.be.below(5000);
      expect(elapsed).to.be.below(20_000);
      expect(maxBuffered, 'bytes buffered by the server for the stalled socket').to.be.below(
        SERVER_BUFFER_BOUND,
      );
      expect(pushedBytes).to.be.greaterThan(3 * SERVER_BUFFER_BOUND);

      console.log(summary('slow client: the others', acc));
      console.log(
        `      [slow client] pushed ${pushedBytes} bytes; server buffered at most ${maxBuffered} bytes for it; ` +
          `others done in ${elapsed} ms`,
      );
      // It resumes reading: everything arrives, each message once (by tid), and is ACKed.
      slow.ws.resume();
      const seen = new Set<string>();
      while (seen.size < SLOW_MESSAGES) {
        const e = await slow.next((x) => x.t === 'SEND', 20_000);
        expect(seen.has(e.tid as string), `duplicate ${String(e.tid)}`).to.equal(false);
        seen.add(e.tid as string);
        slow.send([{ t: 'ACK', smid: e.smid }]);
      }
      await slow.close(4000, 'done');
    });

    it('a poison endpoint (backend always throws) ends in the Mats DLQ after the attempts; the client times out', async () => {
      const node = cluster!.nodes[0]!;
      const client = new MatsSocketClient({
        appName: 'FaultTest',
        appVersion: '1.0.0',
        urls: [node.url],
        webSocket: WebSocket,
        ...fastClientTimings,
      });
      cleanups.push(() => client.close('done'));
      client.setCurrentAuthorization(testAuth('poison'));
      const dlq = dlqName(cluster!.broker.prefix, 'Fault.poison');
      const outcome: unknown = await client
        .request('Fault.poison', `poison-${runId}`, { id: 'p' }, { timeout: 3000 })
        .catch((e: unknown) => e);
      expect(outcome).to.be.instanceOf(ReplyError);
      expect((outcome as ReplyError).code).to.equal(ErrorCode.CLIENT_TIMEOUT);
      await until(() => runs.get('Fault.poison') >= 3, 'three attempts');
      const deadline = Date.now() + 10_000;
      let depth = await cluster!.broker.queueDepth(dlq);
      while (depth < 1 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        depth = await cluster!.broker.queueDepth(dlq);
      }
      expect(depth, `depth of ${dlq}`).to.equal(1);
      // maxDeliveryAttempts is 3 in the test cluster: it ran exactly that often, and not again once dead-lettered.
      expect(runs.get('Fault.poison')).to.equal(3);
      // The node still serves.
      const ok = await client.request<{ id: string }>('Fault.echo', 'after-poison', { id: 'after' });
      expect(ok.data.id).to.equal('after');
      expect(runs.get('Fault.poison')).to.equal(3);
    });
  });
}
