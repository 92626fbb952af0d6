import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { randomId } from '../../util/ids.ts';
import type { AssembledNode, NodeHttpHandler } from '../NodeAssembly.ts';
import { AUTH_COOKIE_NAME } from './DummyAuth.ts';

const LOCAL_ORIGIN = /^https?:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?$/i;

/**
 * The CORS rule of docs/compat-test-server.md 7.3. Returns false (after answering 403) for a foreign origin; otherwise
 * adds the CORS headers for a local origin and returns true.
 */
export function checkCors(request: IncomingMessage, response: ServerResponse): boolean {
  const origin = request.headers.origin;
  if (origin === undefined) return true;
  if (!LOCAL_ORIGIN.test(origin)) {
    response.writeHead(403, { 'content-type': 'text/plain' }).end('Forbidden origin');
    return false;
  }
  response.setHeader('Access-Control-Allow-Origin', origin);
  response.setHeader('Vary', 'Origin');
  response.setHeader('Access-Control-Allow-Credentials', 'true');
  response.setHeader('Access-Control-Allow-Headers', 'authorization');
  return true;
}

function text(response: ServerResponse, status: number, body = ''): true {
  response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' }).end(body);
  return true;
}

/** Writes a JSON response. */
export function json(response: ServerResponse, status: number, body: unknown): true {
  response
    .writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' })
    .end(JSON.stringify(body, null, 2));
  return true;
}

/**
 * `POST <ws path>/close_session?session_id=<sid>`: the clients' out-of-band close on `close()` (docs/protocol.md 8.16).
 * Returns false when the request is not for it.
 */
export async function handleCloseSession(
  node: AssembledNode,
  request: IncomingMessage,
  response: ServerResponse,
  url: URL,
  wsPath: string,
): Promise<boolean> {
  if (url.pathname !== `${wsPath}/close_session`) return false;
  if (request.method === 'OPTIONS') return checkCors(request, response) && text(response, 204);
  if (request.method !== 'POST') return text(response, 405, 'Method Not Allowed');
  if (!checkCors(request, response)) return true;
  request.resume();
  const sessionId = url.searchParams.get('session_id');
  if (!sessionId) return text(response, 400, 'Missing session_id');
  await node.server.closeSession(sessionId, 'Out-of-band close_session');
  return text(response, 204);
}

/** Options of {@link createCompatHttpHandler}. */
export interface CompatHttpOptions {
  /** The WebSocket path. @default '/matssocket' */
  path?: string;
  /** `GET /shutdown`: called after the 200 answer has been written. */
  onShutdown: () => void;
}

/**
 * The HTTP side channels of docs/compat-test-server.md 7.2, served by every node: `sendMessageOnTestTopic`, preconnect,
 * CORS preflights, `close_session`, `/shutdown`, and the two introspection JSON documents.
 */
export function createCompatHttpHandler(options: CompatHttpOptions): NodeHttpHandler {
  const wsPath = options.path ?? '/matssocket';
  return async (node, request, response) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const method = request.method ?? 'GET';
    const path = url.pathname;

    if (path === '/shutdown' && method === 'GET') {
      response
        .writeHead(200, { 'content-type': 'text/plain; charset=utf-8' })
        .end('Shutting down', () => options.onShutdown());
      return true;
    }
    if (await handleCloseSession(node, request, response, url, wsPath)) return true;

    if (path === `${wsPath}/sendMessageOnTestTopic`) {
      if (!checkCors(request, response)) return true;
      if (method === 'OPTIONS') return text(response, 204);
      if (method !== 'GET') return text(response, 405, 'Method Not Allowed');
      const topic = url.searchParams.get('topic');
      if (!topic) return text(response, 400, 'Missing topic');
      await node.server.publish(`sendMessageOnTestTopic_${randomId(10)}`, topic, {
        number: Math.PI,
        string: `Publish to ${topic}`,
      });
      return text(response, 204);
    }

    if (path === wsPath) {
      if (!checkCors(request, response)) return true;
      if (method === 'OPTIONS') return text(response, 204);
      if (method !== 'GET') return text(response, 405, 'Method Not Allowed');
      return preconnect(request, response);
    }

    if (method === 'GET' && path === '/MatsSocketSessions.json') {
      return json(response, 200, await node.server.getSessions());
    }
    if (method === 'GET' && path === '/ActiveMatsSocketSessions.json') {
      return json(
        response,
        200,
        node.server.getActiveSessions().map(({ lastEnvelopes: _omitted, ...session }) => session),
      );
    }
    return false;
  };
}

/** The preconnect GET (7.2): moves the Authorization header into a short-lived cookie. */
function preconnect(request: IncomingMessage, response: ServerResponse): true {
  const authorization = request.headers.authorization;
  if (authorization === undefined) return text(response, 400, 'Missing Authorization header');
  if (authorization.includes(':fail_preConnectOperationServlet:')) return text(response, 401, 'Unauthorized');
  const value = Buffer.from(authorization, 'utf8').toString('base64').replace(/=+$/, '');
  const secure = (request.socket as Partial<TLSSocket>).encrypted === true ? '; Secure' : '';
  response.setHeader('Set-Cookie', `${AUTH_COOKIE_NAME}=${value}; Max-Age=30; HttpOnly${secure}`);
  return text(response, 204);
}
