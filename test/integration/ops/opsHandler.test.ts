import { expect } from 'chai';
import { createServer, request as httpRequest, type OutgoingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError } from '../../../src/errors.ts';
import { createCorsCheck } from '../../../src/ops/corsCheck.ts';
import { createOpsHandler } from '../../../src/ops/opsHandler.ts';
import { readPreconnectCookie } from '../../../src/ops/preconnectHandler.ts';
import { createTestDatabase, type TestDatabase } from '../../../harness/databases.ts';
import { testAuth } from '../../../harness/startTestCluster.ts';
import { nextEvent, useClientPool } from '../../helpers/clientKit.ts';
import { mount, NOOP_TERMINATOR, startOpsTestNode, type OpsTestNode } from './opsKit.ts';

const ADMIN_TOKEN = 'the-admin-token-of-this-test-0123';
const API_KEY = 'the-server-api-key-of-this-test-99';

/** A request with headers fetch() will not send as given (`Host`); resolves to the status and body. */
function raw(
  port: number,
  method: string,
  path: string,
  headers: OutgoingHttpHeaders,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('createOpsHandler: the whole operator surface on one node:http server [in-memory broker + SQLite]', function () {
  this.timeout(20_000);
  const pool = useClientPool();
  let db: TestDatabase | undefined;
  let node: OpsTestNode | undefined;
  const n = (): OpsTestNode => node!;
  const url = (path: string): string => `${n().httpUrl}${path}`;
  const port = (): number => Number(new URL(n().httpUrl).port);

  before(async () => {
    db = await createTestDatabase('sqlite');
    node = await startOpsTestNode(db.knex, ({ server, store, transport, registry }) =>
      createOpsHandler({
        server,
        store,
        transport,
        registry,
        adminToken: ADMIN_TOKEN,
        serverApiKey: API_KEY,
        serverApi: { allowedHosts: ['api.example'] },
        preconnect: { authorize: (value) => value.startsWith('TestAuth:') },
        cors: createCorsCheck({ allowedOrigins: ['https://app.example'] }),
      }),
    );
  });
  after(async () => {
    await node?.stop();
    await db?.drop();
  });

  it('serves /metrics, /health/live, /health/ready and /health; other paths are left to the caller (404)', async () => {
    const metrics = await fetch(url('/metrics'));
    expect(metrics.status).to.equal(200);
    expect(metrics.headers.get('content-type')).to.contain('text/plain');
    await metrics.text();
    for (const path of ['/health/live', '/health/ready', '/health']) {
      expect((await fetch(url(path))).status, path).to.equal(200);
    }
    expect((await fetch(url('/elsewhere'))).status).to.equal(404);
  });

  it('the admin token and the server API key are not interchangeable; refusals of both show on /metrics', async () => {
    const admin = (token: string) =>
      fetch(url('/api/overview'), { headers: { authorization: `Bearer ${token}` } });
    const api = (key: string) =>
      fetch(url('/api/server/sessions'), { headers: { authorization: `Bearer ${key}` } });
    expect((await admin(ADMIN_TOKEN)).status).to.equal(200);
    expect((await admin(API_KEY)).status).to.equal(401);
    expect((await api(API_KEY)).status).to.equal(200);
    const wrong = await api(ADMIN_TOKEN);
    expect(wrong.status).to.equal(401);
    expect(await wrong.json()).to.have.nested.property('error.code', 'INVALID_KEY');
    const text = await (await fetch(url('/metrics'))).text();
    expect(text).to.match(/^matssocket_admin_requests_refused_total\{reason="bad_token"\} 1$/m);
    expect(text).to.match(/^matssocket_server_api_requests_refused_total\{reason="bad_token"\} 1$/m);
  });

  it('with serverApi.allowedHosts a foreign Host → 403 HOST_NOT_ALLOWED; a listed or loopback one passes', async () => {
    const auth = { authorization: `Bearer ${API_KEY}` };
    const foreign = await raw(port(), 'GET', '/api/server/sessions', { host: 'evil.example', ...auth });
    expect(foreign.status).to.equal(403);
    expect(JSON.parse(foreign.body)).to.have.nested.property('error.code', 'HOST_NOT_ALLOWED');
    expect(
      (await raw(port(), 'GET', '/api/server/sessions', { host: 'api.example:80', ...auth })).status,
    ).to.equal(200);
    expect(
      (await raw(port(), 'GET', '/api/server/sessions', { host: 'localhost', ...auth })).status,
    ).to.equal(200);
  });

  it('close_session closes the session (4000); a foreign origin is refused by the CORS check', async () => {
    const client = pool.create(n().webSocketUrl, testAuth('oob'));
    await client.send(NOOP_TERMINATOR, 'establish', {});
    const closePath = `/matssocket/close_session?session_id=${client.sessionId}`;
    const foreign = await fetch(url(closePath), {
      method: 'POST',
      headers: { origin: 'https://evil.example' },
    });
    expect(foreign.status).to.equal(403);
    expect(client.state).to.equal('SESSION_ESTABLISHED');
    const closed = nextEvent(client, 'session:closed');
    const res = await fetch(url(closePath), { method: 'POST', headers: { origin: 'https://app.example' } });
    expect(res.status).to.equal(204);
    expect(res.headers.get('access-control-allow-origin')).to.equal('https://app.example');
    expect((await closed).code).to.equal(4000);
    expect((await fetch(url('/matssocket/close_session'), { method: 'POST' })).status).to.equal(400);
    expect((await fetch(url(closePath))).status).to.equal(405);
  });

  it('preconnect: the Authorization value becomes a short-lived cookie the handshake can read back', async () => {
    const value = testAuth('cookie-user');
    const res = await fetch(url('/matssocket'), { headers: { authorization: value } });
    expect(res.status).to.equal(204);
    const cookie = res.headers.get('set-cookie')!;
    expect(cookie).to.match(/^MatsSocketAuthCookie=[A-Za-z0-9+/]+; Max-Age=30; HttpOnly$/);
    const pair = cookie.split(';')[0]!;
    expect(readPreconnectCookie({ headers: { cookie: `other=1; ${pair}` } })).to.equal(value);
    expect(readPreconnectCookie({ headers: { cookie: 'other=1' } })).to.equal(undefined);
    expect((await fetch(url('/matssocket'))).status).to.equal(400);
    expect((await fetch(url('/matssocket'), { headers: { authorization: 'Other:x' } })).status).to.equal(401);
    const preflight = await fetch(url('/matssocket'), {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example' },
    });
    expect(preflight.status).to.equal(204);
    expect(preflight.headers.get('access-control-allow-headers')).to.equal('authorization');
  });

  describe('parts left out', () => {
    let http: Server | undefined;
    afterEach(async () => {
      const h = http;
      http = undefined;
      if (h) await new Promise<void>((resolve) => h.close(() => resolve()));
    });

    it('only the server: close_session is on, nothing else; closeSession: false turns it off', async () => {
      for (const [closeSession, closeStatus] of [
        [undefined, 400],
        [false, 404],
      ] as const) {
        http = createServer(mount(createOpsHandler({ server: n().server, closeSession })));
        await new Promise<void>((resolve) => http!.listen(0, '127.0.0.1', () => resolve()));
        const base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
        for (const path of [
          '/metrics',
          '/health/ready',
          '/health/live',
          '/api/overview',
          '/api/server/sessions',
        ])
          expect((await fetch(`${base}${path}`)).status, path).to.equal(404);
        expect((await fetch(`${base}/matssocket`)).status).to.equal(404);
        expect((await fetch(`${base}/matssocket/close_session`, { method: 'POST' })).status).to.equal(
          closeStatus,
        );
        const h = http;
        http = undefined;
        await new Promise<void>((resolve) => h.close(() => resolve()));
      }
    });

    it('a part without what it needs, or with a short secret, is a ConfigError', () => {
      const server = n().server;
      expect(() => createOpsHandler({ server, adminToken: ADMIN_TOKEN }))
        .to.throw(ConfigError)
        .with.property('code', 'CONFIG_INVALID');
      expect(() => createOpsHandler({ server, health: { probeTimeoutMs: 100 } })).to.throw(ConfigError);
      expect(() => createOpsHandler({ server, serverApiKey: 'short' }))
        .to.throw(ConfigError)
        .with.property('field', 'serverApiKey');
      expect(() => createOpsHandler({ server, serverApiKey: API_KEY, serverApi: { maxBodyBytes: 0 } }))
        .to.throw(ConfigError)
        .with.property('field', 'serverApi.maxBodyBytes');
      expect(() => createOpsHandler({ server, store: n().store, adminToken: 'short' })).to.throw(ConfigError);
    });
  });
});
