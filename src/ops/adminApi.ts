import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MatsSocketServer } from '../server/MatsSocketServer.ts';
import type { DeadLetterPurge } from '../store/storeTypes.ts';
import type { AdminAccess } from './adminAccess.ts';
import { adminIntrospection } from './adminIntrospection.ts';
import { AdminQuery, AdminQueryError } from './adminQuery.ts';
import {
  adminDeadLetterPage,
  adminMetricsHistory,
  adminNodes,
  adminOverview,
  adminSessionPage,
  type AdminStore,
} from './adminReads.ts';
import { requestUrl, type HttpHandler } from './httpHandler.ts';
import type { MetricsHistory } from './MetricsHistory.ts';
import { readJsonBody, RequestBodyError } from './readJsonBody.ts';
import { writeJson } from './writeJson.ts';

/** Largest accepted JSON body, in bytes. */
const MAX_BODY_BYTES = 64 * 1024;

/** Options of {@link createAdminApiHandler}. */
export interface AdminApiOptions {
  /** The node's server: nodes, sessions, dead letters, closing. */
  server: MatsSocketServer;
  /** The store, for the outbox depth per session. */
  store: AdminStore;
  /** Authenticates every admin API request (see `createAdminAccess`). */
  access: AdminAccess;
  /** The node's sampled metrics, for `/api/metrics/history`; absent: that route answers 404. */
  metricsHistory?: MetricsHistory | undefined;
}

/**
 * The admin page's small JSON API (all under `/api/`; docs/operations.md §4), on the server's and the store's
 * operator API:
 * - `GET /api/overview`
 * - `GET /api/introspection`: node, implementation, endpoints, this node's live sessions
 * - `GET /api/live-sessions/<sid>`: one of them with its last envelopes
 * - `GET /api/nodes`: the cluster's nodes
 * - `GET /api/sessions?q=&limit=&after=`: a page of sessions, searched by user or session id prefix
 * - `GET /api/dead-letters?limit=&before=`: a page of dead letters, newest first
 * - `GET /api/metrics/history?since=`: the node's sampled metrics (with `metricsHistory`)
 * - `GET /api/dead-letters/<id>`: one dead letter with envelope and message
 * - `POST /api/dead-letters/<id>/requeue`
 * - `POST /api/dead-letters/purge` with `{"ids": [..]}` or `{"all": true}`
 * - `POST /api/sessions/<id>/close`
 *
 * Every request passes `access` first (Host check, then bearer token). POSTs must also be `application/json`,
 * which a cross-origin page cannot send without a CORS preflight (never granted here). Query parameters are
 * validated (unknown, repeated, too long or out of range: 400). Errors are `{"error": "<text>"}`. Not under
 * `/api/`: false.
 */
export function createAdminApiHandler(options: AdminApiOptions): HttpHandler {
  return async (request, response) => {
    const url = requestUrl(request);
    if (!url.pathname.startsWith('/api/')) return false;
    if (!options.access(request, response)) return true;
    try {
      return await answer(options, request, response, url);
    } catch (err) {
      if (err instanceof AdminQueryError) return writeJson(response, 400, { error: err.message });
      throw err;
    }
  };
}

/** The GET routes with the query parameters each takes. */
const READS: Record<string, readonly string[]> = {
  '/api/overview': [],
  '/api/nodes': [],
  '/api/sessions': ['q', 'limit', 'after'],
  '/api/dead-letters': ['limit', 'before'],
  '/api/metrics/history': ['since'],
};

async function read(options: AdminApiOptions, path: string, query: AdminQuery): Promise<unknown> {
  const { server, store } = options;
  switch (path) {
    case '/api/overview':
      return adminOverview(server, store);
    case '/api/nodes':
      return adminNodes(server);
    case '/api/sessions':
      return adminSessionPage(server, store, query);
    case '/api/dead-letters':
      return adminDeadLetterPage(server, query);
    default:
      return options.metricsHistory ? adminMetricsHistory(server, options.metricsHistory, query) : undefined;
  }
}

async function answer(
  options: AdminApiOptions,
  request: IncomingMessage,
  response: ServerResponse,
  url: URL,
): Promise<true> {
  const { server } = options;
  const path = url.pathname;
  const method = request.method ?? 'GET';
  const params = READS[path];
  if (params && method === 'GET') {
    const body = await read(options, path, new AdminQuery(url.searchParams, params));
    if (body === undefined) return writeJson(response, 404, { error: 'no metrics history on this node' });
    return writeJson(response, 200, body);
  }
  if (method === 'GET' && path === '/api/introspection') {
    return writeJson(response, 200, adminIntrospection(server));
  }
  const liveSession = /^\/api\/live-sessions\/([A-Za-z0-9]{1,64})$/.exec(path);
  if (method === 'GET' && liveSession) {
    const session = server.getActiveSession(liveSession[1]!);
    if (!session) return writeJson(response, 404, { error: 'no such session on this node' });
    return writeJson(response, 200, session);
  }

  const deadLetter = /^\/api\/dead-letters\/(\d{1,15})$/.exec(path);
  if (method === 'GET' && deadLetter) {
    const entry = await server.getDeadLetter(Number(deadLetter[1]));
    if (!entry) return writeJson(response, 404, { error: 'no such dead letter' });
    const { messageBinary, ...rest } = entry;
    return writeJson(response, 200, {
      ...rest,
      messageBinary: messageBinary ? Buffer.from(messageBinary).toString('base64') : null,
    });
  }
  if (method !== 'POST') return writeJson(response, 405, { error: 'method not allowed' });
  if (!(request.headers['content-type'] ?? '').startsWith('application/json')) {
    return writeJson(response, 415, { error: 'POST needs content-type application/json' });
  }
  let body: unknown;
  try {
    body = await readJsonBody(request, MAX_BODY_BYTES, {});
  } catch (err) {
    if (err instanceof RequestBodyError && err.code === 'BODY_TOO_LARGE') {
      return writeJson(response, 413, { error: `body larger than ${MAX_BODY_BYTES} bytes` });
    }
    return writeJson(response, 400, { error: 'invalid JSON body' });
  }

  const requeue = /^\/api\/dead-letters\/(\d{1,15})\/requeue$/.exec(path);
  if (requeue) {
    const result = await server.requeueDeadLetter(Number(requeue[1]));
    return writeJson(response, result.ok ? 200 : 409, result.ok ? { ok: true } : result);
  }
  if (path === '/api/dead-letters/purge') {
    const b = (typeof body === 'object' && body !== null ? body : {}) as { ids?: unknown; all?: unknown };
    let purge: DeadLetterPurge;
    if (b.all === true) purge = { olderThanTs: Date.now() + 1 };
    else if (Array.isArray(b.ids) && b.ids.every((id) => Number.isSafeInteger(id)))
      purge = { ids: b.ids as number[] };
    else return writeJson(response, 400, { error: 'give {"ids": [..]} or {"all": true}' });
    return writeJson(response, 200, { purged: await server.purgeDeadLetters(purge) });
  }
  const close = /^\/api\/sessions\/([A-Za-z0-9]{1,64})\/close$/.exec(path);
  if (close) {
    await server.closeSession(close[1]!, 'Closed from the admin page');
    return writeJson(response, 200, { ok: true });
  }
  return writeJson(response, 404, { error: 'unknown admin API path' });
}
