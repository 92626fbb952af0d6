import type { ServerResponse } from 'node:http';
import { createCloseSessionHandler } from '../../ops/closeSessionHandler.ts';
import { createCorsCheck, type CorsCheck } from '../../ops/corsCheck.ts';
import type { HttpHandler } from '../../ops/httpHandler.ts';
import { createPreconnectHandler } from '../../ops/preconnectHandler.ts';
import { writeText } from '../../ops/writeJson.ts';
import { randomId } from '../../util/ids.ts';
import type { AssembledNode, NodeHttpHandler } from '../NodeAssembly.ts';
import { AUTH_COOKIE_NAME } from './DummyAuth.ts';

const LOCAL_ORIGIN = /^https?:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?$/i;

/**
 * The CORS rule of docs/compat-test-server.md 7.3. Returns false (after answering 403) for a foreign origin; otherwise
 * adds the CORS headers for a local origin and returns true.
 */
export const checkCors: CorsCheck = createCorsCheck({ allowedOrigins: [LOCAL_ORIGIN] });

/** Writes a JSON response (indented: the introspection documents are for humans). */
export function json(response: ServerResponse, status: number, body: unknown): true {
  response
    .writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' })
    .end(JSON.stringify(body, null, 2));
  return true;
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
  const closeSessions = new WeakMap<AssembledNode, HttpHandler>();
  const closeSessionOf = (node: AssembledNode): HttpHandler => {
    let handler = closeSessions.get(node);
    if (!handler) {
      handler = createCloseSessionHandler({ server: node.server, path: wsPath, cors: checkCors });
      closeSessions.set(node, handler);
    }
    return handler;
  };
  // 7.2: the value is refused before it becomes a cookie when it carries the failure marker.
  const preconnect = createPreconnectHandler({
    path: wsPath,
    cookieName: AUTH_COOKIE_NAME,
    authorize: (authorization) => !authorization.includes(':fail_preConnectOperationServlet:'),
    cors: checkCors,
  });
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
    if (await closeSessionOf(node)(request, response)) return true;

    if (path === `${wsPath}/sendMessageOnTestTopic`) {
      if (!checkCors(request, response)) return true;
      if (method === 'OPTIONS') return writeText(response, 204);
      if (method !== 'GET') return writeText(response, 405, 'Method Not Allowed');
      const topic = url.searchParams.get('topic');
      if (!topic) return writeText(response, 400, 'Missing topic');
      await node.server.publish(`sendMessageOnTestTopic_${randomId(10)}`, topic, {
        number: Math.PI,
        string: `Publish to ${topic}`,
      });
      return writeText(response, 204);
    }

    if (await preconnect(request, response)) return true;

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
