import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MatsSocketServer } from '../server/MatsSocketServer.ts';
import type { ClusterStoreAndForward } from '../store/ClusterStoreAndForward.ts';
import type { DeadLetterPurge } from '../store/storeTypes.ts';
import type { AdminAccess } from './adminAccess.ts';
import { adminIntrospection } from './adminIntrospection.ts';
import { requestPath, type HttpHandler } from './httpHandler.ts';
import { readJsonBody, RequestBodyError } from './readJsonBody.ts';
import { writeJson } from './writeJson.ts';

/** Sessions listed by `/api/overview` at most. */
const MAX_SESSIONS = 500;
/** Dead letters listed by `/api/overview` at most. */
const MAX_DEAD_LETTERS = 200;
/** Largest accepted JSON body, in bytes. */
const MAX_BODY_BYTES = 64 * 1024;

/** Options of {@link createAdminApiHandler}. */
export interface AdminApiOptions {
  /** The node's server: sessions, dead letters, closing. */
  server: MatsSocketServer;
  /** The store, for the outbox depth per session. */
  store: Pick<ClusterStoreAndForward, 'getOutboxDepths'>;
  /** Authenticates every admin API request (see `createAdminAccess`). */
  access: AdminAccess;
}

/** A session as the admin page shows it. */
export interface AdminSession {
  sessionId: string;
  userId: string;
  appName: string;
  appVersion: string;
  clientLib: string;
  /** The node holding it; absent when it is deregistered (the client is away). */
  nodeName?: string;
  createdTimestamp: number;
  livelinessTimestamp: number;
  /** Messages in its outbox (not yet ACKed by the client). */
  outboxDepth: number;
  /** Held by this node right now. */
  liveHere: boolean;
}

/** The overview the admin page polls: sessions with outbox depth, this node's live sessions, dead letters. */
export async function adminOverview(
  server: MatsSocketServer,
  store: Pick<ClusterStoreAndForward, 'getOutboxDepths'>,
): Promise<unknown> {
  const [sessions, deadLetters] = await Promise.all([
    server.getSessions({ limit: MAX_SESSIONS }),
    server.listDeadLetters({ limit: MAX_DEAD_LETTERS }),
  ]);
  const depths = await store.getOutboxDepths(sessions.map((s) => s.id));
  const live = new Set(server.getActiveSessions().map((s) => s.sessionId));
  const list: AdminSession[] = sessions.map((s) => ({
    sessionId: s.id,
    userId: s.uid,
    appName: s.an,
    appVersion: s.av,
    clientLib: s.clv,
    ...(s.nn !== undefined ? { nodeName: s.nn } : {}),
    createdTimestamp: s.scts,
    livelinessTimestamp: s.slts,
    outboxDepth: depths.get(s.id) ?? 0,
    liveHere: live.has(s.id),
  }));
  return {
    node: server.nodeName,
    now: Date.now(),
    sessions: list,
    liveSessionsHere: live.size,
    deadLetters,
  };
}

/**
 * The admin page's small JSON API (all under `/api/`; docs/operations.md §4), on the server's and the store's
 * operator API:
 * - `GET /api/overview`
 * - `GET /api/introspection`: node, implementation, endpoints, this node's live sessions
 * - `GET /api/live-sessions/<sid>`: one of them with its last envelopes
 * - `GET /api/dead-letters/<id>`: one dead letter with envelope and message
 * - `POST /api/dead-letters/<id>/requeue`
 * - `POST /api/dead-letters/purge` with `{"ids": [..]}` or `{"all": true}`
 * - `POST /api/sessions/<id>/close`
 *
 * Every request passes `access` first (Host check, then bearer token). POSTs must also be `application/json`,
 * which a cross-origin page cannot send without a CORS preflight (never granted here). Errors are
 * `{"error": "<text>"}`. Not under `/api/`: false.
 */
export function createAdminApiHandler(options: AdminApiOptions): HttpHandler {
  return async (request, response) => {
    const path = requestPath(request);
    if (!path.startsWith('/api/')) return false;
    if (!options.access(request, response)) return true;
    return answer(options, request, response, path);
  };
}

async function answer(
  { server, store }: AdminApiOptions,
  request: IncomingMessage,
  response: ServerResponse,
  path: string,
): Promise<true> {
  const method = request.method ?? 'GET';
  if (method === 'GET' && path === '/api/overview') {
    return writeJson(response, 200, await adminOverview(server, store));
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
