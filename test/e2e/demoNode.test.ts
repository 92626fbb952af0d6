import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MessageEvent } from '../../src/client/clientEvents.ts';
import { dummyAuthValue } from '../../src/cli/compat/DummyAuth.ts';
import { DemoIds } from '../../src/cli/demo/demoEndpoints.ts';
import { startDemoNode, type DemoNode } from '../../src/cli/demo/startDemoNode.ts';
import { readMainNodeConfig } from '../../src/cli/nodeConfig.ts';
import { silentLogger } from '../../src/logging.ts';
import { TerminatorInbox, eventually, nextEvent, useClientPool } from '../helpers/clientKit.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/databases.ts';
import { requireService, serviceUrls } from '../helpers/services.ts';
import { createTestBroker, testTransportKinds, type TestBroker } from '../helpers/transports.ts';

interface Overview {
  node: string;
  sessions: {
    sessionId: string;
    userId: string;
    outboxDepth: number;
    liveHere: boolean;
    nodeName?: string;
  }[];
  deadLetters: { id: number; sessionId: string; reason: string }[];
}

const ENVS = [
  { label: 'embedded: in-process broker + SQLite file', external: false },
  { label: 'RabbitMQ + MariaDB', external: true },
] as const;

for (const env of ENVS.filter((e) => !e.external || testTransportKinds().includes('rabbitmq'))) {
  describe(`npm start node: demo endpoints, admin API, /metrics, /health [${env.label}]`, function () {
    this.timeout(20_000);
    const pool = useClientPool();
    let demo: DemoNode | undefined;
    let dir: string | undefined;
    let db: TestDatabase | undefined;
    let broker: TestBroker | undefined;
    const node = (): DemoNode => {
      if (!demo) throw new Error('demo node not started');
      return demo;
    };
    const http = (path: string): string => `${node().node.httpUrl}${path}`;
    const post = (path: string, body: unknown) =>
      fetch(http(path), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const overview = async (): Promise<Overview> =>
      (await (await fetch(http('/api/overview'))).json()) as Overview;

    before(async function () {
      this.timeout(60_000);
      const envVars: Record<string, string> = { PORT: '0', DEMO_TICKER_INTERVAL_MS: '100' };
      if (env.external) {
        await requireService(this, 'rabbitmq');
        await requireService(this, 'mariadb');
        db = await createTestDatabase('mysql');
        broker = await createTestBroker('rabbitmq');
        Object.assign(envVars, {
          MATSSOCKET_DB_URL: db.url,
          MATSSOCKET_AMQP_URL: serviceUrls.rabbitmq,
          MATSSOCKET_QUEUE_PREFIX: broker.prefix,
        });
      } else {
        dir = mkdtempSync(join(tmpdir(), 'matssocket-node-'));
        envVars.MATSSOCKET_DB_URL = `sqlite:${join(dir, 'sub', 'node.sqlite')}`;
      }
      demo = await startDemoNode(readMainNodeConfig(envVars), {
        logger: silentLogger,
        stopGraceMs: 300,
      });
    });
    after(async function () {
      this.timeout(30_000);
      await demo?.stop();
      await broker?.close();
      await db?.drop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    const client = (user = 'node-test') => pool.create(node().urls.webSocket, dummyAuthValue(user));

    it('serves the pages, their scripts and the client bundle; unknown paths are 404', async () => {
      for (const [path, type] of [
        ['/', 'text/html'],
        ['/admin', 'text/html'],
        ['/demo.js', 'text/javascript'],
        ['/admin.js', 'text/javascript'],
        ['/style.css', 'text/css'],
        ['/matssocket.iife.js', 'text/javascript'],
      ] as const) {
        const res = await fetch(http(path));
        expect(res.status, path).to.equal(200);
        expect(res.headers.get('content-type'), path).to.contain(type);
        await res.arrayBuffer();
      }
      expect((await fetch(http('/nope'))).status).to.equal(404);
      expect(node().urls.demo).to.equal(`${node().node.httpUrl}/`);
    });

    it('Demo.echo and Demo.slow answer through the backend; Demo.pushMe pushes; the ticker and chat topics publish', async () => {
      const c = client();
      const echo = await c.request<{ upperCase: string; node: string }>(DemoIds.echo, 'e', { text: 'abc' });
      expect(echo.data).to.deep.include({ upperCase: 'ABC', node: node().node.nodeName });
      const slow = await c.request<{ waitedMs: number }>(DemoIds.slow, 's', { delayMs: 50 });
      expect(slow.data.waitedMs).to.equal(50);
      const pushes = new TerminatorInbox(c, DemoIds.pushTerminator);
      await c.send(DemoIds.pushMe, 'p', { count: 2 });
      expect((await pushes.waitFor(2)).map((m) => (m.data as { n: number }).n)).to.deep.equal([1, 2]);
      const ticks: MessageEvent[] = [];
      c.subscribe(DemoIds.tickerTopic, (e) => ticks.push(e));
      const chat: MessageEvent[] = [];
      c.subscribe(DemoIds.chatTopic, (e) => chat.push(e));
      await nextEvent(c, 'subscription', (e) => e.topicId === DemoIds.chatTopic);
      await c.send(DemoIds.publish, 'chat', { text: 'hi' });
      await eventually(() => ticks.length > 0 && chat.length > 0, { what: 'a tick and the chat message' });
      expect(chat[0]!.data).to.deep.include({ from: 'node-test', text: 'hi' });
    });

    it('admin API: sessions with outbox depth; a dead letter can be inspected, re-queued and purged', async () => {
      const c = client('admin-test');
      await c.send(DemoIds.poison, 'poison', {});
      const dead = await eventually(
        async () => (await overview()).deadLetters.find((d) => d.sessionId === c.sessionId),
        { what: 'the dead letter', timeoutMs: 5000 },
      );
      expect(dead.reason).to.equal('client_nack');
      const view = await overview();
      expect(view.node).to.equal(node().node.nodeName);
      const session = view.sessions.find((s) => s.sessionId === c.sessionId);
      expect(session).to.deep.include({ userId: 'admin-test', liveHere: true, outboxDepth: 0 });
      const detail = (await (await fetch(http(`/api/dead-letters/${dead.id}`))).json()) as {
        envelope: string;
      };
      expect(JSON.parse(detail.envelope)).to.deep.include({ eid: DemoIds.poisonTerminator });
      expect((await fetch(http('/api/dead-letters/999999999'))).status).to.equal(404);

      const requeued = await post(`/api/dead-letters/${dead.id}/requeue`, {});
      expect(requeued.status).to.equal(200);
      // Redelivered to the client, which NACKs it again (no such terminator): dead-lettered anew.
      const again = await eventually(
        async () =>
          (await overview()).deadLetters.find((d) => d.sessionId === c.sessionId && d.id !== dead.id),
        { what: 'the dead letter again', timeoutMs: 5000 },
      );
      expect((await post(`/api/dead-letters/${dead.id}/requeue`, {})).status).to.equal(409);
      const purged = (await (await post('/api/dead-letters/purge', { ids: [again.id] })).json()) as {
        purged: number;
      };
      expect(purged.purged).to.equal(1);
      expect((await post('/api/dead-letters/purge', {})).status).to.equal(400);
      expect((await post('/api/dead-letters/purge', { all: true })).status).to.equal(200);
      expect((await overview()).deadLetters).to.deep.equal([]);
      const nonJson = await fetch(http('/api/dead-letters/purge'), { method: 'POST', body: '{"all":true}' });
      expect(nonJson.status).to.equal(415);
    });

    it('admin API and close_session close sessions (4000 to the client)', async () => {
      const a = client('closer-a');
      await a.send('Demo.pushMe', 'x', { count: 1 });
      const closedA = nextEvent(a, 'session:closed');
      expect((await post(`/api/sessions/${a.sessionId}/close`, {})).status).to.equal(200);
      expect((await closedA).code).to.equal(4000);
      const b = client('closer-b');
      await b.send('Demo.pushMe', 'y', { count: 1 });
      const closedB = nextEvent(b, 'session:closed');
      const res = await fetch(http(`/matssocket/close_session?session_id=${b.sessionId}`), {
        method: 'POST',
      });
      expect(res.status).to.equal(204);
      expect((await closedB).code).to.equal(4000);
    });

    it('/metrics is Prometheus text with the server, Mats and process metrics', async () => {
      await client().request(DemoIds.echo, 'm', { text: 'm' });
      const res = await fetch(http('/metrics'));
      expect(res.status).to.equal(200);
      expect(res.headers.get('content-type')).to.contain('text/plain');
      const text = await res.text();
      expect(text).to.match(/^matssocket_messages_received_total\{/m);
      expect(text).to.match(/^mats_/m);
      expect(text).to.match(/^process_cpu_user_seconds_total/m);
    });

    it('/health is UP (200) with the store and the broker', async () => {
      const res = await fetch(http('/health'));
      expect(res.status).to.equal(200);
      expect(await res.json()).to.deep.include({ status: 'UP', node: node().node.nodeName });
    });

    if (!env.external) {
      // Last: it breaks the node (closing a shared RabbitMQ connection is not needed to show the same).
      it('/health is DOWN (503) when the broker connection is gone', async () => {
        await node().node.transport.close();
        const down = await fetch(http('/health'));
        expect(down.status).to.equal(503);
        expect(await down.json()).to.deep.include({
          status: 'DOWN',
          broker: { status: 'DOWN', state: 'closed' },
        });
      });
    }
  });
}
