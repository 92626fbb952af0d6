import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MatsSocketServer } from '../../server/MatsSocketServer.ts';
import type { ClusterStoreAndForward } from '../../store/ClusterStoreAndForward.ts';
import type { DeadLetterPurge } from '../../store/storeTypes.ts';
import { json } from '../compat/compatHttp.ts';
import type { AdminAccess } from '../adminAccess.ts';

/** Sessions listed by `/api/overview` at most. */
const MAX_SESSIONS = 500;
/** Dead letters listed by `/api/overview` at most. */
const MAX_DEAD_LETTERS = 200;
/** Largest accepted JSON body, in bytes. */
const MAX_BODY_BYTES = 64 * 1024;

/** What the admin API works on: one node's server and the cluster's store. */
export interface AdminApiNode {
  readonly nodeName: string;
  readonly server: MatsSocketServer;
  readonly store: Pick<ClusterStoreAndForward, 'getOutboxDepths'>;
}

/** Options of {@link createAdminApiHandler}. */
export interface AdminApiOptions {
  node: AdminApiNode;
  /** Authenticates every admin API request (see `createAdminAccess`). */
  access: AdminAccess;
}

/** Answers an admin API request; false when the request is not for the admin API (not under `/api/`). */
export type AdminApiHandler = (request: IncomingMessage, response: ServerResponse) => Promise<boolean>;

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

async function readJson(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new RangeError('body too large');
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  return text.length === 0 ? {} : (JSON.parse(text) as unknown);
}

/** The overview the admin page polls: sessions with outbox depth, this node's live sessions, dead letters. */
export async function adminOverview(node: AdminApiNode): Promise<unknown> {
  const [sessions, deadLetters] = await Promise.all([
    node.server.getSessions({ limit: MAX_SESSIONS }),
    node.server.listDeadLetters({ limit: MAX_DEAD_LETTERS }),
  ]);
  const depths = await node.store.getOutboxDepths(sessions.map((s) => s.id));
  const live = new Set(node.server.getActiveSessions().map((s) => s.sessionId));
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
    node: node.nodeName,
    now: Date.now(),
    sessions: list,
    liveSessionsHere: live.size,
    deadLetters,
  };
}

/**
 * The admin page's small JSON API (all under `/api/`), on the server's and the store's operator API:
 * - `GET /api/overview`
 * - `GET /api/dead-letters/<id>`: one dead letter with envelope and message
 * - `POST /api/dead-letters/<id>/requeue`
 * - `POST /api/dead-letters/purge` with `{"ids": [..]}` or `{"all": true}`
 * - `POST /api/sessions/<id>/close`
 *
 * Every request passes `access` first (Host check, then bearer token). POSTs must also be `application/json`,
 * which a cross-origin page cannot send without a CORS preflight (never granted here).
 */
export function createAdminApiHandler(options: AdminApiOptions): AdminApiHandler {
  return async (request, response) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    if (!url.pathname.startsWith('/api/')) return false;
    if (!options.access(request, response)) return true;
    return answer(options.node, request, response, url.pathname);
  };
}

async function answer(
  node: AdminApiNode,
  request: IncomingMessage,
  response: ServerResponse,
  path: string,
): Promise<boolean> {
  const method = request.method ?? 'GET';
  if (method === 'GET' && path === '/api/overview') return json(response, 200, await adminOverview(node));

  const deadLetter = /^\/api\/dead-letters\/(\d+)$/.exec(path);
  if (method === 'GET' && deadLetter) {
    const entry = await node.server.getDeadLetter(Number(deadLetter[1]));
    if (!entry) return json(response, 404, { error: 'no such dead letter' });
    const { messageBinary, ...rest } = entry;
    return json(response, 200, {
      ...rest,
      messageBinary: messageBinary ? Buffer.from(messageBinary).toString('base64') : null,
    });
  }
  if (method !== 'POST') return json(response, 405, { error: 'method not allowed' });
  if (!(request.headers['content-type'] ?? '').startsWith('application/json')) {
    return json(response, 415, { error: 'POST needs content-type application/json' });
  }
  let body: unknown;
  try {
    body = await readJson(request);
  } catch {
    return json(response, 400, { error: 'invalid JSON body' });
  }

  const requeue = /^\/api\/dead-letters\/(\d+)\/requeue$/.exec(path);
  if (requeue) {
    const result = await node.server.requeueDeadLetter(Number(requeue[1]));
    return json(response, result.ok ? 200 : 409, result.ok ? { ok: true } : result);
  }
  if (path === '/api/dead-letters/purge') {
    const b = body as { ids?: unknown; all?: unknown };
    let purge: DeadLetterPurge;
    if (b.all === true) purge = { olderThanTs: Date.now() + 1 };
    else if (Array.isArray(b.ids) && b.ids.every((id) => Number.isSafeInteger(id)))
      purge = { ids: b.ids as number[] };
    else return json(response, 400, { error: 'give {"ids": [..]} or {"all": true}' });
    return json(response, 200, { purged: await node.server.purgeDeadLetters(purge) });
  }
  const close = /^\/api\/sessions\/([A-Za-z0-9]{1,64})\/close$/.exec(path);
  if (close) {
    await node.server.closeSession(close[1]!, 'Closed from the admin page');
    return json(response, 200, { ok: true });
  }
  return json(response, 404, { error: 'unknown admin API path' });
}
