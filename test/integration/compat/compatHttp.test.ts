import { expect } from 'chai';
import WebSocket from 'ws';
import type { MessageEvent } from '../../../src/client/clientEvents.ts';
import { dummyAuthValue } from '../../../src/cli/compat/DummyAuth.ts';
import { eventually, nextEvent, useClientPool } from '../../helpers/clientKit.ts';
import { HandshakeRefusedError, RawClient } from '../../helpers/rawClient.ts';
import { COMPAT_ENVS, startTestCompatServer, type TestCompatServer } from './compatTestKit.ts';

const AUTH = dummyAuthValue('standard');

/** Completes the WebSocket handshake and returns the 101 response headers (then closes). */
function handshakeHeaders(url: string, headers: Record<string, string>): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ['matssocket'], { headers });
    ws.once('upgrade', (res) => {
      resolve(res.headers);
      ws.terminate();
    });
    ws.once('unexpected-response', (_req, res) => {
      reject(new HandshakeRefusedError(res.statusCode ?? 0));
      ws.terminate();
    });
    ws.once('error', reject);
  });
}

describe('compatibility server HTTP side channels (docs/compat-test-server.md 3.4, 7.2, 7.3)', function () {
  this.timeout(20_000);
  let compat: TestCompatServer | undefined;
  const pool = useClientPool();
  const server = (): TestCompatServer => {
    if (!compat) throw new Error('compat server not started');
    return compat;
  };
  const http = (node = 0): string => server().httpUrls[node]!;
  const root = (node = 0): string => new URL(http(node)).origin;

  before(async () => {
    compat = await startTestCompatServer(COMPAT_ENVS[0], 2);
  });
  after(async () => {
    await compat?.stop();
  });

  describe('sendMessageOnTestTopic', () => {
    it('publishes {π, "Publish to <topic>"} and answers 204; a subscriber on another node gets it', async () => {
      const c = pool.create(server().urls[1]!, AUTH);
      const pubs: MessageEvent[] = [];
      c.subscribe('Test.http.topic', (e) => pubs.push(e));
      await nextEvent(c, 'subscription', (e) => e.topicId === 'Test.http.topic');
      const res = await fetch(`${http()}/sendMessageOnTestTopic?topic=Test.http.topic`);
      expect(res.status).to.equal(204);
      await eventually(() => pubs.length === 1, { what: 'the publication' });
      expect(pubs[0]!.data).to.deep.equal({ number: Math.PI, string: 'Publish to Test.http.topic' });
    });

    it('answers 400 without a topic', async () => {
      expect((await fetch(`${http()}/sendMessageOnTestTopic`)).status).to.equal(400);
    });
  });

  describe('CORS', () => {
    it('a local origin gets the CORS headers; a foreign origin gets 403; no origin proceeds', async () => {
      for (const origin of ['http://localhost:3000', 'https://127.0.0.1', 'http://[::1]:8080']) {
        const res = await fetch(`${http()}/sendMessageOnTestTopic?topic=Test.cors`, { headers: { origin } });
        expect(res.status, origin).to.equal(204);
        expect(res.headers.get('access-control-allow-origin')).to.equal(origin);
        expect(res.headers.get('vary')).to.equal('Origin');
        expect(res.headers.get('access-control-allow-credentials')).to.equal('true');
        expect(res.headers.get('access-control-allow-headers')).to.equal('authorization');
      }
      const foreign = await fetch(`${http()}/sendMessageOnTestTopic?topic=Test.cors`, {
        headers: { origin: 'http://evil.example' },
      });
      expect(foreign.status).to.equal(403);
      const none = await fetch(`${http()}/sendMessageOnTestTopic?topic=Test.cors`);
      expect(none.headers.get('access-control-allow-origin')).to.equal(null);
    });

    it('OPTIONS preflights on the WebSocket path and on sendMessageOnTestTopic answer 204', async () => {
      for (const url of [http(), `${http()}/sendMessageOnTestTopic`]) {
        const res = await fetch(url, { method: 'OPTIONS', headers: { origin: 'http://localhost:1234' } });
        expect(res.status, url).to.equal(204);
        expect(res.headers.get('access-control-allow-origin')).to.equal('http://localhost:1234');
      }
      const foreign = await fetch(http(), { method: 'OPTIONS', headers: { origin: 'https://example.com' } });
      expect(foreign.status).to.equal(403);
    });
  });

  describe('preconnect and the handshake cookie', () => {
    it('GET without Authorization → 400; with :fail_preConnectOperationServlet: → 401', async () => {
      expect((await fetch(http())).status).to.equal(400);
      const failing = await fetch(http(), {
        headers: { authorization: 'DummyAuth:fail_preConnectOperationServlet:-1' },
      });
      expect(failing.status).to.equal(401);
    });

    it('GET with Authorization → 204 and the cookie: base64 without padding, Max-Age=30, HttpOnly', async () => {
      const value = 'DummyAuth:cookieUser:-1';
      const res = await fetch(http(), { headers: { authorization: value } });
      expect(res.status).to.equal(204);
      const expected = Buffer.from(value).toString('base64').replace(/=+$/, '');
      expect(res.headers.get('set-cookie')).to.equal(
        `MatsSocketAuthCookie=${expected}; Max-Age=30; HttpOnly`,
      );
    });

    it('the cookie moves into the connection: Test.replyWithCookieAuthorization returns it', async () => {
      const value = 'DummyAuth:cookieUser:-1';
      const cookie = `MatsSocketAuthCookie=${Buffer.from(value).toString('base64').replace(/=+$/, '')}`;
      const client = await RawClient.connect(`${server().urls[0]!}?preconnect=true`, { headers: { cookie } });
      try {
        await client.hello(AUTH);
        client.send([
          { t: 'REQUEST', eid: 'Test.replyWithCookieAuthorization', tid: 'c', cmid: 1, msg: { number: 1 } },
        ]);
        const resolve = await client.nextOfType('RESOLVE');
        expect(resolve.msg).to.deep.equal({ number: 1, string: value, sleepTime: 0, sleepIncoming: 0 });
      } finally {
        await client.close(4000, 'done');
      }
    });

    it('any Cookie header gets the clearing Set-Cookie in the 101 response', async () => {
      const headers = await handshakeHeaders(server().urls[0]!, { cookie: 'other=1' });
      expect(headers['set-cookie']).to.deep.equal([
        'MatsSocketAuthCookie=; Expires=Thu, 01 Jan 1970 00:00:00 GMT',
      ]);
      const without = await handshakeHeaders(server().urls[0]!, {});
      expect(without['set-cookie']).to.equal(undefined);
    });

    it('preconnect=true without the cookie, or with :fail_checkHandshake:, is refused with 403', async () => {
      const url = `${server().urls[0]!}?preconnect=true`;
      const refused = (headers: Record<string, string>) =>
        RawClient.connect(url, { headers }).then(
          async (c) => {
            await c.close();
            return 0;
          },
          (err: unknown) => (err instanceof HandshakeRefusedError ? err.status : -1),
        );
      expect(await refused({ cookie: 'other=1' })).to.equal(403);
      const failing = Buffer.from('DummyAuth:fail_checkHandshake:-1').toString('base64');
      expect(await refused({ cookie: `MatsSocketAuthCookie=${failing}` })).to.equal(403);
    });
  });

  describe('close_session, introspection and shutdown', () => {
    it('POST close_session closes the session (4000 to the client); a missing session_id → 400', async () => {
      const c = pool.create(server().urls[0]!, AUTH);
      await c.send('Test.ignoreInIncomingHandler', 'start', {});
      const sid = c.sessionId!;
      const closed = nextEvent(c, 'session:closed');
      const res = await fetch(`${http(1)}/close_session?session_id=${sid}`, { method: 'POST' });
      expect(res.status).to.equal(204);
      expect((await closed).code).to.equal(4000);
      expect((await fetch(`${http()}/close_session`, { method: 'POST' })).status).to.equal(400);
    });

    it('serves /MatsSocketSessions.json (store) and /ActiveMatsSocketSessions.json (this node)', async () => {
      const c = pool.create(server().urls[0]!, AUTH);
      await c.send('Test.ignoreInIncomingHandler', 'start', {});
      const all = (await (await fetch(`${root(1)}/MatsSocketSessions.json`)).json()) as { id: string }[];
      expect(all.map((s) => s.id)).to.include(c.sessionId);
      const active0 = (await (await fetch(`${root(0)}/ActiveMatsSocketSessions.json`)).json()) as {
        sessionId: string;
      }[];
      const active1 = (await (await fetch(`${root(1)}/ActiveMatsSocketSessions.json`)).json()) as {
        sessionId: string;
      }[];
      expect(active0.map((s) => s.sessionId)).to.include(c.sessionId);
      expect(active1.map((s) => s.sessionId)).not.to.include(c.sessionId);
    });

    it('GET /shutdown answers 200 "Shutting down" and requests the stop', async () => {
      const before = server().shutdownRequests;
      const res = await fetch(`${root()}/shutdown`);
      expect(res.status).to.equal(200);
      expect(await res.text()).to.equal('Shutting down');
      await eventually(() => server().shutdownRequests === before + 1, { what: 'the shutdown callback' });
    });

    it('unknown paths are 404', async () => {
      expect((await fetch(`${root()}/nothing-here`)).status).to.equal(404);
    });
  });
});
