import { expect } from 'chai';
import { createServer, request as httpRequest } from 'node:http';
import { ConfigError } from '../../../src/errors.ts';
import { MetricsHistory, type MetricsSample } from '../../../src/ops/MetricsHistory.ts';
import { createOpsHandler } from '../../../src/ops/opsHandler.ts';
import type { AdminNode, AdminSession } from '../../../src/ops/adminReads.ts';
import type { DeadLetterSummary } from '../../../src/store/storeTypes.ts';
import { randomId } from '../../../src/util/ids.ts';
import { createTestDatabase, type TestDatabase } from '../../../harness/databases.ts';
import { testAuth } from '../../../harness/startTestCluster.ts';
import { eventually, useClientPool } from '../../helpers/clientKit.ts';
import { NOOP_TERMINATOR, startOpsTestNode, type OpsTestNode } from './opsKit.ts';

const ADMIN_TOKEN = 'the-admin-token-of-the-admin-api-test';

interface Page {
  total: number;
  next: string | null;
}

/** A GET naming `host` (fetch() will not send a Host header of our choosing); resolves to status, headers, body. */
function getWithHost(
  port: number,
  path: string,
  host: string,
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers: { host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('admin API and page: nodes, sessions search and paging, dead letters, metrics history [in-memory broker + SQLite]', function () {
  this.timeout(20_000);
  const pool = useClientPool();
  let db: TestDatabase | undefined;
  let node: OpsTestNode | undefined;
  let history: MetricsHistory | undefined;
  const n = (): OpsTestNode => node!;
  const url = (path: string): string => `${n().httpUrl}${path}`;
  const get = (path: string, token = ADMIN_TOKEN): Promise<Response> =>
    fetch(url(path), { headers: { authorization: `Bearer ${token}` } });
  async function json<T>(path: string): Promise<T> {
    const res = await get(path);
    expect(res.status, `${path}: ${res.status}`).to.equal(200);
    return (await res.json()) as T;
  }

  async function connect(user: string) {
    const client = pool.create(n().webSocketUrl, testAuth(user));
    await client.send(NOOP_TERMINATOR, 'establish', {});
    return client;
  }

  before(async () => {
    db = await createTestDatabase('sqlite');
    node = await startOpsTestNode(
      db.knex,
      ({ server, store, transport, registry }) => {
        // Sampled by the tests (sampleNow), not by its timer.
        history = new MetricsHistory({ source: registry, nodeName: server.nodeName });
        return createOpsHandler({
          server,
          store,
          transport,
          registry,
          adminToken: ADMIN_TOKEN,
          adminPage: true,
          metricsHistory: history,
        });
      },
      { server: { deadLetterOnNack: true }, serverMetrics: true },
    );
  });
  after(async () => {
    await history?.stop();
    await node?.stop();
    await db?.drop();
  });

  it('GET /api/nodes: this node, alive, with the sessions registered to it and live here', async () => {
    await connect(`nodes-${randomId(6)}`);
    const body = await json<{
      node: string;
      liveSessionsHere: number;
      connections: number;
      nodes: AdminNode[];
    }>('/api/nodes');
    expect(body.node).to.equal(n().server.nodeName);
    expect(body.liveSessionsHere).to.equal(1);
    expect(body.connections).to.equal(1);
    const me = body.nodes.find((x) => x.nodeName === n().server.nodeName);
    expect(me).to.deep.include({ alive: true, thisNode: true, sessions: 1 });
    expect(me!.livelinessTs).to.be.a('number').at.most(Date.now());
    expect(body.nodes.filter((x) => x.thisNode)).to.have.length(1);
  });

  it('GET /api/sessions: search by user id or session id prefix, keyset pages with next and the total', async () => {
    const tag = randomId(6);
    const clients = [];
    for (let i = 0; i < 3; i++) clients.push(await connect(`alice-${tag}-${i}`));
    await connect(`bob-${tag}`);

    const first = await json<Page & { sessions: AdminSession[] }>(`/api/sessions?q=alice-${tag}&limit=2`);
    expect(first.total).to.equal(3);
    expect(first.sessions).to.have.length(2);
    expect(first.next).to.equal(first.sessions[1]!.sessionId);
    const second = await json<Page & { sessions: AdminSession[] }>(
      `/api/sessions?q=alice-${tag}&limit=2&after=${first.next}`,
    );
    expect(second).to.deep.include({ total: 3, next: null });
    const listed = [...first.sessions, ...second.sessions];
    expect(listed.map((s) => s.sessionId)).to.have.members(clients.map((c) => c.sessionId));
    expect(listed.map((s) => s.sessionId)).to.deep.equal(listed.map((s) => s.sessionId).sort());
    expect(listed[0]).to.deep.include({ liveHere: true, outboxDepth: 0, nodeName: n().server.nodeName });

    const sid = clients[1]!.sessionId!;
    const bySession = await json<Page & { sessions: AdminSession[] }>(`/api/sessions?q=${sid.slice(0, 12)}`);
    expect(bySession.sessions.map((s) => s.sessionId)).to.deep.equal([sid]);
    expect(bySession.total).to.equal(1);
    // Case matters; '%' is not a wildcard.
    expect((await json<Page>(`/api/sessions?q=ALICE-${tag}`)).total).to.equal(0);
    expect((await json<Page>(`/api/sessions?q=${encodeURIComponent('%')}`)).total).to.equal(0);
    // No q: all sessions of the store.
    expect((await json<Page>('/api/sessions')).total).to.be.at.least(4);
  });

  it('refuses invalid query parameters with 400 and says which', async () => {
    for (const [path, says] of [
      ['/api/sessions?limit=0', "'limit'"],
      ['/api/sessions?limit=201', "'limit'"],
      ['/api/sessions?limit=2.5', "'limit'"],
      ['/api/sessions?limit=-1', "'limit'"],
      ['/api/sessions?sort=user', "unknown query parameter 'sort'"],
      ['/api/sessions?q=a&q=b', 'given twice'],
      [`/api/sessions?q=${'x'.repeat(257)}`, "'q' is longer than 256"],
      ['/api/sessions?q=a%0Ab', 'control characters'],
      ['/api/dead-letters?before=abc', "'before'"],
      ['/api/dead-letters?before=0', "'before'"],
      ['/api/metrics/history?since=-5', "'since'"],
      ['/api/nodes?x=1', "unknown query parameter 'x'"],
    ] as const) {
      const res = await get(path);
      expect(res.status, path).to.equal(400);
      expect(((await res.json()) as { error: string }).error, path).to.contain(says);
    }
    // Still behind the token.
    expect((await get('/api/sessions?limit=0', 'not-the-admin-token-at-all')).status).to.equal(401);
  });

  it('GET /api/dead-letters: newest first, paged by before, with the total; a NACKed letter shows its delivery', async () => {
    const client = await connect(`dl-${randomId(6)}`);
    const sid = client.sessionId!;
    for (let i = 0; i < 3; i++) await n().server.send(sid, `poison-${i}`, 'Client.nobodyListens', { i });
    await eventually(async () => (await n().server.countDeadLetters({ sessionId: sid })) === 3, {
      what: 'three dead letters (the client NACKs a terminator it does not have)',
    });
    const first = await json<Page & { deadLetters: DeadLetterSummary[] }>('/api/dead-letters?limit=2');
    const total = first.total;
    expect(total).to.be.at.least(3);
    expect(first.deadLetters.map((d) => d.traceId)).to.deep.equal(['poison-2', 'poison-1']);
    expect(first.next).to.equal(String(first.deadLetters[1]!.id));
    const second = await json<Page & { deadLetters: DeadLetterSummary[] }>(
      `/api/dead-letters?limit=2&before=${first.next}`,
    );
    expect(second.deadLetters[0]!.traceId).to.equal('poison-0');
    expect(second.total).to.equal(total);

    // The details of a message that was delivered and NACKed count that delivery.
    const detail = await json<DeadLetterSummary & { envelope: string; messageText: string }>(
      `/api/dead-letters/${first.deadLetters[0]!.id}`,
    );
    expect(detail).to.deep.include({ reason: 'client_nack', deliveryCount: 1, sessionId: sid });
    expect(detail.lastAttemptTs).to.be.a('number').at.least(detail.originalStoredTs);
    expect(JSON.parse(detail.envelope)).to.deep.include({ t: 'SEND', eid: 'Client.nobodyListens' });
    expect(JSON.parse(detail.messageText)).to.deep.equal({ i: 2 });
    // The overview counts all of them, not the length of its capped list.
    expect((await json<{ deadLetterTotal: number }>('/api/overview')).deadLetterTotal).to.equal(total);
  });

  it('GET /api/metrics/history: the sampled rates of the node, after a time with since', async () => {
    const h = history!;
    await h.sampleNow();
    const client = await connect(`metrics-${randomId(6)}`);
    for (let i = 0; i < 5; i++) await client.send(NOOP_TERMINATOR, `m${i}`, {});
    await h.sampleNow();
    const body = await json<{ node: string; intervalMs: number; capacity: number; samples: MetricsSample[] }>(
      '/api/metrics/history',
    );
    expect(body).to.deep.include({ node: n().server.nodeName, intervalMs: 1000, capacity: 600 });
    const last = body.samples.at(-1)!;
    expect(last.messagesIn).to.be.greaterThan(0);
    expect(last.messagesOut).to.be.greaterThan(0);
    expect(last.liveSessions).to.be.at.least(1);
    const since = await json<{ samples: MetricsSample[] }>(`/api/metrics/history?since=${last.t}`);
    expect(since.samples).to.deep.equal([]);
    const before = await json<{ samples: MetricsSample[] }>(`/api/metrics/history?since=${last.t - 1}`);
    expect(before.samples).to.deep.equal([last]);
  });

  it('serves the admin page with a strict CSP; the same Host check as the API', async () => {
    for (const path of [
      '/admin',
      '/admin/',
      '/admin/admin.js',
      '/admin/adminCharts.js',
      '/admin/admin.css',
    ]) {
      const res = await fetch(url(path));
      expect(res.status, path).to.equal(200);
      expect(res.headers.get('content-security-policy'), path).to.contain("script-src 'self'");
      expect(res.headers.get('x-frame-options')).to.equal('DENY');
      await res.arrayBuffer();
    }
    const page = await (await fetch(url('/admin'))).text();
    expect(page).to.contain('<base href="/admin/" />').and.contain('src="admin.js"');
    expect((await fetch(url('/admin/other.js'))).status).to.equal(404);
    expect((await fetch(url('/admin'), { method: 'POST' })).status).to.equal(404);
    const port = Number(new URL(n().httpUrl).port);
    expect((await getWithHost(port, '/admin', 'evil.example')).status).to.equal(403);
    expect((await getWithHost(port, '/admin', `localhost:${port}`)).status).to.equal(200);
  });

  it('the page needs the admin API; a custom path moves the page and its base', async () => {
    const { server, store, transport } = n();
    expect(() => createOpsHandler({ server, store, transport, adminPage: true }))
      .to.throw(ConfigError)
      .with.property('field', 'adminPage');
    expect(() =>
      createOpsHandler({ server, store, transport, adminToken: ADMIN_TOKEN, adminPage: { path: '/ops/' } }),
    )
      .to.throw(ConfigError)
      .with.property('field', 'adminPage.path');
    const handler = createOpsHandler({
      server,
      store,
      transport,
      adminToken: ADMIN_TOKEN,
      adminPage: { path: '/ops/console' },
    });
    const http = createServer((req, res) => {
      void Promise.resolve(handler(req, res)).then((handled) => {
        if (!handled) res.writeHead(404).end();
      });
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    try {
      const port = (http.address() as { port: number }).port;
      const page = await fetch(`http://127.0.0.1:${port}/ops/console`);
      expect(await page.text()).to.contain('<base href="/ops/console/" />');
      expect((await fetch(`http://127.0.0.1:${port}/ops/console/admin.js`)).status).to.equal(200);
      expect((await fetch(`http://127.0.0.1:${port}/admin`)).status).to.equal(404);
      // No metrics history given: the charts' route says so.
      const none = await fetch(`http://127.0.0.1:${port}/api/metrics/history`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      });
      expect(none.status).to.equal(404);
    } finally {
      await new Promise<void>((resolve) => http.close(() => resolve()));
    }
  });
});
