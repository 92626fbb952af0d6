import { expect } from 'chai';
import { request as httpRequest } from 'node:http';
import type { MessageEvent } from '../../../src/client/clientEvents.ts';
import type { MatsSocketClient } from '../../../src/client/MatsSocketClient.ts';
import { promMetrics } from '../../../src/metrics/promMetrics.ts';
import { createServerApiHandler, type ServerApiSession } from '../../../src/ops/serverApi.ts';
import { createTestDatabase, type TestDatabase } from '../../../harness/databases.ts';
import { testAuth } from '../../../harness/startTestCluster.ts';
import { eventually, nextEvent, TerminatorInbox, useClientPool } from '../../helpers/clientKit.ts';
import { NOOP_TERMINATOR, startOpsTestNode, type OpsTestNode } from './opsKit.ts';

const KEY = 'server-api-key-for-the-tests-0123';
const TERMINATOR = 'Ops.client.terminator';

interface ApiAnswer {
  status: number;
  body: { error?: { code: string; message: string } } & Record<string, unknown>;
  headers: Headers;
}

describe('createServerApiHandler: the server API over HTTP [in-memory broker + SQLite]', function () {
  this.timeout(20_000);
  const pool = useClientPool();
  let db: TestDatabase | undefined;
  let node: OpsTestNode | undefined;
  const n = (): OpsTestNode => node!;

  before(async () => {
    db = await createTestDatabase('sqlite');
    node = await startOpsTestNode(db.knex, ({ server, registry }) =>
      createServerApiHandler({ server, apiKey: KEY, metrics: promMetrics({ registry }) }),
    );
  });
  after(async () => {
    await node?.stop();
    await db?.drop();
  });

  async function call(
    method: 'GET' | 'POST',
    path: string,
    body?: unknown,
    headers: Record<string, string> = { authorization: `Bearer ${KEY}` },
  ): Promise<ApiAnswer> {
    const res = await fetch(`${n().httpUrl}/api/server${path}`, {
      method,
      headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: (await res.json()) as ApiAnswer['body'], headers: res.headers };
  }

  function expectError(answer: ApiAnswer, status: number, code: string): void {
    expect(answer.status, JSON.stringify(answer.body)).to.equal(status);
    expect(answer.body.error?.code).to.equal(code);
    expect(answer.body.error?.message).to.be.a('string').that.is.not.empty;
  }

  async function metric(name: string, labels: string): Promise<number> {
    const text = await n().registry.metrics();
    const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}} `));
    return line === undefined ? 0 : Number(line.split(' ')[1]);
  }

  /** A client of `userId` with an established session and an inbox on {@link TERMINATOR}. */
  async function session(userId: string): Promise<{ client: MatsSocketClient; inbox: TerminatorInbox }> {
    const client = pool.create(n().webSocketUrl, testAuth(userId));
    const inbox = new TerminatorInbox(client, TERMINATOR);
    await client.send(NOOP_TERMINATOR, 'establish', {});
    return { client, inbox };
  }

  describe('authentication', () => {
    it('no key → 401 UNAUTHENTICATED, a wrong key → 401 INVALID_KEY, both counted; the key → 200', async () => {
      const before = {
        unauthenticated: await metric(
          'matssocket_server_api_requests_refused_total',
          'reason="unauthenticated"',
        ),
        bad: await metric('matssocket_server_api_requests_refused_total', 'reason="bad_token"'),
      };
      const none = await call('GET', '/sessions', undefined, {});
      expectError(none, 401, 'UNAUTHENTICATED');
      expect(none.headers.get('www-authenticate')).to.match(/^Bearer realm="matssocket-server-api"/);
      expectError(await call('GET', '/sessions', undefined, { authorization: KEY }), 401, 'UNAUTHENTICATED');
      for (const key of [`${KEY}x`, KEY.slice(0, -1), 'a-different-key-of-enough-length']) {
        expectError(
          await call('POST', '/publish', { topicId: 't', message: 1 }, { authorization: `Bearer ${key}` }),
          401,
          'INVALID_KEY',
        );
      }
      expect(
        await metric('matssocket_server_api_requests_refused_total', 'reason="unauthenticated"'),
      ).to.equal(before.unauthenticated + 2);
      expect(await metric('matssocket_server_api_requests_refused_total', 'reason="bad_token"')).to.equal(
        before.bad + 3,
      );
      expect(
        await metric('matssocket_server_api_requests_total', 'operation="publish",status="401"'),
      ).to.equal(3);
      expect((await call('GET', '/sessions')).status).to.equal(200);
    });

    it('the key is checked before the route, the method and the body', async () => {
      expectError(await call('GET', '/nothing', undefined, {}), 401, 'UNAUTHENTICATED');
      expectError(await call('GET', '/publish', undefined, {}), 401, 'UNAUTHENTICATED');
      expectError(await call('POST', '/publish', '{bad json', {}), 401, 'UNAUTHENTICATED');
    });
  });

  describe('validation', () => {
    it('wrong types, missing or unknown fields, a non-object body, too long ids → 400 INVALID_ARGUMENT', async () => {
      const bad: [string, unknown][] = [
        ['/publish', { topicId: 5, message: 1 }],
        ['/publish', { topicId: '', message: 1 }],
        ['/publish', { topicId: 't' }],
        ['/publish', { topicId: 't', message: 1, traceId: 7 }],
        ['/publish', { topicId: 't', message: 1, traceId: 'x'.repeat(1025) }],
        ['/publish', { topicId: 't', message: 1, extra: true }],
        ['/publish', [{ topicId: 't', message: 1 }]],
        ['/publish', 'just a string'],
        ['/publish', null],
        ['/send', { sessionId: 's', message: 1 }],
        ['/send', { sessionId: 's'.repeat(257), terminatorId: TERMINATOR, message: 1 }],
        ['/send-to-user', { userId: ['u'], terminatorId: TERMINATOR, message: 1 }],
        ['/close-session', { sessionId: 's', reason: 1 }],
        ['/close-session', {}],
      ];
      for (const [path, body] of bad) {
        const answer = await call('POST', path, JSON.stringify(body));
        expect(answer.status, `${path} ${JSON.stringify(body)}`).to.equal(400);
        expect(answer.body.error?.code).to.equal('INVALID_ARGUMENT');
      }
      const deep = `{"topicId":"t","message":${'['.repeat(2000)}${']'.repeat(2000)}}`;
      expectError(await call('POST', '/publish', deep), 400, 'INVALID_ARGUMENT');
    });

    it('query parameters of GET sessions are checked: limit, offset, after, unknown ones', async () => {
      for (const query of [
        'limit=0',
        'limit=1001',
        'limit=abc',
        'limit=-1',
        'offset=10001',
        'offset=1&after=x',
        'userId=',
        'userId=a&userId=b',
        'sort=id',
      ]) {
        expectError(await call('GET', `/sessions?${query}`), 400, 'INVALID_ARGUMENT');
      }
    });

    it('bad JSON → 400 INVALID_JSON; not application/json → 415; wrong method → 405 with Allow; unknown route → 404', async () => {
      expectError(await call('POST', '/publish', '{"topicId": "t",'), 400, 'INVALID_JSON');
      expectError(await call('POST', '/publish', ''), 400, 'INVALID_ARGUMENT');
      const text = await fetch(`${n().httpUrl}/api/server/publish`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'text/plain' },
        body: '{"topicId":"t","message":1}',
      });
      expect(text.status).to.equal(415);
      expect(((await text.json()) as ApiAnswer['body']).error?.code).to.equal('UNSUPPORTED_MEDIA_TYPE');
      const get = await call('GET', '/publish');
      expectError(get, 405, 'METHOD_NOT_ALLOWED');
      expect(get.headers.get('allow')).to.equal('POST');
      expectError(await call('POST', '/sessions', {}), 405, 'METHOD_NOT_ALLOWED');
      expectError(await call('GET', '/nothing'), 404, 'NOT_FOUND');
      expectError(await call('GET', ''), 404, 'NOT_FOUND');
      expect((await fetch(`${n().httpUrl}/api/serverx`)).status).to.equal(404);
    });

    it('a body over 1 MiB → 413 BODY_TOO_LARGE, declared (content-length) or streamed (chunked)', async () => {
      const big = JSON.stringify({ topicId: 't', message: 'x'.repeat(1024 * 1024) });
      expectError(await call('POST', '/publish', big), 413, 'BODY_TOO_LARGE');
      const chunked = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const url = new URL(`${n().httpUrl}/api/server/publish`);
        const req = httpRequest(
          {
            host: url.hostname,
            port: url.port,
            path: url.pathname,
            method: 'POST',
            headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
          },
          (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (body += c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          },
        );
        req.on('error', reject);
        for (let i = 0; i < 20; i++) req.write('x'.repeat(100 * 1024));
        req.end();
      });
      expect(chunked.status).to.equal(413);
      expect(JSON.parse(chunked.body)).to.have.nested.property('error.code', 'BODY_TOO_LARGE');
      // The node goes on answering.
      expect((await call('GET', '/sessions')).status).to.equal(200);
    });
  });

  describe('operations', () => {
    it('publish reaches a subscribed client with the trace id', async () => {
      const { client } = await session('subscriber');
      const received: MessageEvent[] = [];
      client.subscribe('Ops.topic', (e) => received.push(e));
      await nextEvent(client, 'subscription', (e) => e.topicId === 'Ops.topic');
      const answer = await call('POST', '/publish', {
        topicId: 'Ops.topic',
        message: { hello: 'topic' },
        traceId: 'api-publish-1',
      });
      expect(answer).to.deep.include({ status: 200, body: { ok: true } });
      await eventually(() => received.length > 0, { what: 'the publication' });
      expect(received[0]).to.deep.include({ data: { hello: 'topic' }, traceId: 'api-publish-1' });
    });

    it('send reaches the session exactly once, in order; an unknown session → 404 SESSION_NOT_FOUND', async () => {
      const { client, inbox } = await session('sendee');
      const sessionId = client.sessionId!;
      for (const nth of [1, 2]) {
        const answer = await call('POST', '/send', {
          sessionId,
          terminatorId: TERMINATOR,
          message: { nth },
          traceId: `api-send-${nth}`,
        });
        expect(answer).to.deep.include({ status: 200, body: { ok: true } });
      }
      await inbox.waitFor(2);
      expect(inbox.messages.map((m) => [m.data, m.traceId])).to.deep.equal([
        [{ nth: 1 }, 'api-send-1'],
        [{ nth: 2 }, 'api-send-2'],
      ]);
      expectError(
        await call('POST', '/send', { sessionId: 'NoSuchSession000', terminatorId: TERMINATOR, message: 1 }),
        404,
        'SESSION_NOT_FOUND',
      );
    });

    it('send-to-user reaches every session of the user, once each, and answers their count', async () => {
      const alice = [await session('alice'), await session('alice')];
      const bob = await session('bob');
      const answer = await call('POST', '/send-to-user', {
        userId: 'alice',
        terminatorId: TERMINATOR,
        message: 'to alice',
      });
      expect(answer).to.deep.include({ status: 200, body: { ok: true, sent: 2 } });
      const marker = await call('POST', '/send-to-user', {
        userId: 'bob',
        terminatorId: TERMINATOR,
        message: 'to bob',
      });
      expect(marker.body).to.deep.equal({ ok: true, sent: 1 });
      for (const a of alice) {
        await a.inbox.waitFor(1);
        // A second delivery would come before this one in the session's stored order.
        await call('POST', '/send', {
          sessionId: a.client.sessionId,
          terminatorId: TERMINATOR,
          message: 'end',
        });
        await a.inbox.waitFor(2);
        expect(a.inbox.messages.map((m) => m.data)).to.deep.equal(['to alice', 'end']);
      }
      await bob.inbox.waitFor(1);
      expect(bob.inbox.messages.map((m) => m.data)).to.deep.equal(['to bob']);
      const nobody = await call('POST', '/send-to-user', {
        userId: 'nobody',
        terminatorId: TERMINATOR,
        message: 1,
      });
      expect(nobody.body).to.deep.equal({ ok: true, sent: 0 });
    });

    it('close-session closes the session: 4000 to the client with the reason', async () => {
      const { client } = await session('closee');
      const closed = nextEvent(client, 'session:closed');
      const answer = await call('POST', '/close-session', { sessionId: client.sessionId, reason: 'bye now' });
      expect(answer).to.deep.include({ status: 200, body: { ok: true } });
      const event = await closed;
      expect(event.code).to.equal(4000);
      expect(event.reason).to.contain('bye now');
      const sessions = (await call('GET', '/sessions?userId=closee')).body;
      expect(sessions).to.deep.include({ total: 0, sessions: [] });
    });

    it('sessions: a user filter, limit with offset or the after cursor, the total', async () => {
      const clients = [await session('pager'), await session('pager'), await session('pager')];
      const ids = clients.map((c) => c.client.sessionId!).sort();
      const first = (await call('GET', '/sessions?userId=pager&limit=2')).body as {
        sessions: ServerApiSession[];
        total: number;
        next: string | null;
      };
      expect(first.total).to.equal(3);
      expect(first.sessions.map((s) => s.sessionId)).to.deep.equal(ids.slice(0, 2));
      expect(first.sessions[0]).to.deep.include({
        userId: 'pager',
        appName: 'ClientTest',
        appVersion: '1.0.0',
        nodeName: n().server.nodeName,
      });
      expect(first.next).to.equal(ids[1]);
      const rest = (await call('GET', `/sessions?userId=pager&limit=2&after=${first.next}`)).body;
      expect(rest).to.deep.include({ total: 3, next: null });
      expect((rest.sessions as ServerApiSession[]).map((s) => s.sessionId)).to.deep.equal(ids.slice(2));
      const byOffset = (await call('GET', '/sessions?userId=pager&limit=2&offset=2')).body;
      expect((byOffset.sessions as ServerApiSession[]).map((s) => s.sessionId)).to.deep.equal(ids.slice(2));
      const all = (await call('GET', '/sessions')).body;
      expect(all.total).to.be.at.least(3);
      expect((all.sessions as ServerApiSession[]).map((s) => s.sessionId)).to.include.members(ids);
    });

    it('answers count by operation and status', async () => {
      expect(
        await metric('matssocket_server_api_requests_total', 'operation="send",status="200"'),
      ).to.be.at.least(2);
      expect(
        await metric('matssocket_server_api_requests_total', 'operation="send",status="404"'),
      ).to.be.at.least(1);
      expect(
        await metric('matssocket_server_api_requests_total', 'operation="unknown",status="404"'),
      ).to.be.at.least(1);
    });

    // Last: it stops the node.
    it('a stopping node → 503 SERVER_STOPPED', async () => {
      await n().server.stop(100);
      expectError(await call('POST', '/publish', { topicId: 't', message: 1 }), 503, 'SERVER_STOPPED');
    });
  });
});
