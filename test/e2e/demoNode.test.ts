import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { request as httpRequest, type OutgoingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import type { MessageEvent } from '../../src/client/clientEvents.ts';
import { dummyAuthValue } from '../../src/cli/compat/DummyAuth.ts';
import { DemoIds } from '../../src/cli/demo/demoEndpoints.ts';
import { startDemoNode, type DemoNode } from '../../src/cli/demo/startDemoNode.ts';
import { readMainNodeConfig } from '../../src/cli/nodeConfig.ts';
import { silentLogger, type Logger } from '../../src/logging.ts';
import { TerminatorInbox, eventually, nextEvent, useClientPool } from '../helpers/clientKit.ts';
import { createTestDatabase, type TestDatabase } from '../../harness/databases.ts';
import { requireService, serviceUrls } from '../../harness/services.ts';
import { createTestBroker, testTransportKinds, type TestBroker } from '../../harness/transports.ts';

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
    const bearer = (): Record<string, string> => ({ authorization: `Bearer ${node().adminToken}` });
    const get = (path: string) => fetch(http(path), { headers: bearer() });
    const post = (path: string, body: unknown) =>
      fetch(http(path), {
        method: 'POST',
        headers: { ...bearer(), 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const overview = async (): Promise<Overview> => (await (await get('/api/overview')).json()) as Overview;

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
      const detail = (await (await get(`/api/dead-letters/${dead.id}`)).json()) as {
        envelope: string;
      };
      expect(JSON.parse(detail.envelope)).to.deep.include({ eid: DemoIds.poisonTerminator });
      expect((await get('/api/dead-letters/999999999')).status).to.equal(404);

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
      const nonJson = await fetch(http('/api/dead-letters/purge'), {
        method: 'POST',
        headers: bearer(),
        body: '{"all":true}',
      });
      expect(nonJson.status).to.equal(415);
    });

    it('admin API: no token or a wrong one → 401, a foreign Host → 403 (DNS rebinding), the token → 200', async () => {
      const token = node().adminToken;
      expect(token).to.have.length.of.at.least(40);
      // Generated: the printed admin URL carries it in the fragment, for the page to store.
      expect(node().urls.admin).to.equal(`${node().node.httpUrl}/admin#token=${token}`);
      const a = client('admin-secret');
      await a.request(DemoIds.echo, 'e', { text: 'x' });

      const none = await fetch(http('/api/overview'));
      expect(none.status).to.equal(401);
      expect(none.headers.get('www-authenticate')).to.match(/^Bearer /);
      expect(await none.text()).to.not.contain(a.sessionId);
      const wrong = { authorization: `Bearer ${token.slice(0, -1)}x` };
      expect((await fetch(http('/api/overview'), { headers: wrong })).status).to.equal(401);
      expect((await fetch(http('/api/overview'), { headers: { authorization: token } })).status).to.equal(
        401,
      );
      for (const path of [`/api/sessions/${a.sessionId}/close`, '/api/dead-letters/purge']) {
        const res = await fetch(http(path), {
          method: 'POST',
          headers: { ...wrong, 'content-type': 'application/json' },
          body: '{"all":true}',
        });
        expect(res.status, path).to.equal(401);
      }
      expect(a.state).to.equal('SESSION_ESTABLISHED');

      // A rebinding page's requests name its own host; with the right token too (it cannot have it, but the
      // Host check does not depend on that).
      expect(await rawGet(node().node.port, '/api/overview', { host: 'evil.example', ...bearer() })).to.equal(
        403,
      );
      expect(await rawGet(node().node.port, '/api/overview', { host: 'localhost:1', ...bearer() })).to.equal(
        200,
      );
      expect(await rawGet(node().node.port, '/api/overview', { host: '[::1]', ...bearer() })).to.equal(200);

      const ok = await get('/api/overview');
      expect(ok.status).to.equal(200);
      expect(((await ok.json()) as Overview).sessions.map((s) => s.sessionId)).to.include(a.sessionId);
      const metrics = await (await fetch(http('/metrics'))).text();
      expect(metrics).to.match(/^matssocket_admin_requests_refused_total\{reason="host"\} 1$/m);
      expect(metrics).to.match(/^matssocket_admin_requests_refused_total\{reason="bad_token"\} 3$/m);
      expect(metrics).to.match(/^matssocket_admin_requests_refused_total\{reason="unauthenticated"\} 2$/m);
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

    it('/health and /health/ready are UP (200) with the store and the broker; /health/live answers', async () => {
      const res = await fetch(http('/health'));
      expect(res.status).to.equal(200);
      expect(await res.json()).to.deep.include({ status: 'UP', node: node().node.nodeName });
      expect((await fetch(http('/health/ready'))).status).to.equal(200);
      expect(await (await fetch(http('/health/live'))).json()).to.deep.equal({
        status: 'UP',
        node: node().node.nodeName,
      });
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

/** A GET with headers fetch() will not send as given (`Host`); resolves to the status. */
function rawGet(port: number, path: string, headers: OutgoingHttpHeaders): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('npm start node: admin token configuration [embedded]', function () {
  this.timeout(20_000);
  let dir: string | undefined;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'matssocket-admin-'));
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function start(env: Record<string, string>): Promise<{ demo: DemoNode; warnings: string[] }> {
    const warnings: string[] = [];
    const logger: Logger = {
      trace() {},
      debug() {},
      info() {},
      warn: (_o, msg) => void warnings.push(msg ?? ''),
      error() {},
      child: () => logger,
    };
    const config = readMainNodeConfig({
      PORT: '0',
      DEMO_TICKER_INTERVAL_MS: '0',
      MATSSOCKET_DB_URL: `sqlite:${join(dir!, `${Object.keys(env).length}.sqlite`)}`,
      ...env,
    });
    return { demo: await startDemoNode(config, { logger, stopGraceMs: 300 }), warnings };
  }

  it('HOST=0.0.0.0 without MATSSOCKET_ADMIN_TOKEN warns that the printed token is all that guards the admin API', async () => {
    const { demo, warnings } = await start({ HOST: '0.0.0.0' });
    try {
      expect(warnings.filter((w) => w.includes('MATSSOCKET_ADMIN_TOKEN'))).to.have.length(1);
      expect(warnings[0]).to.contain('HOST=0.0.0.0');
    } finally {
      await demo.stop();
    }
  });

  it('a configured token: no warning, kept out of the printed URL; MATSSOCKET_ADMIN_HOSTS names pass the Host check', async () => {
    const token = 'configured-admin-token-0123456789';
    const { demo, warnings } = await start({
      HOST: '0.0.0.0',
      MATSSOCKET_ADMIN_TOKEN: token,
      MATSSOCKET_ADMIN_HOSTS: 'admin.example, Other.Example',
    });
    try {
      expect(warnings).to.deep.equal([]);
      expect(demo.adminToken).to.equal(token);
      expect(demo.urls.admin).to.not.contain(token);
      const port = demo.node.port;
      const auth = { authorization: `Bearer ${token}` };
      expect(await rawGet(port, '/api/overview', { host: `admin.example:${port}`, ...auth })).to.equal(200);
      expect(await rawGet(port, '/api/overview', { host: 'other.example', ...auth })).to.equal(200);
      expect(await rawGet(port, '/api/overview', { host: '0.0.0.0', ...auth })).to.equal(403);
      expect(await rawGet(port, '/api/overview', { host: 'admin.example.evil', ...auth })).to.equal(403);
      expect(await rawGet(port, '/api/overview', { host: 'admin.example' })).to.equal(401);
    } finally {
      await demo.stop();
    }
  });
});
