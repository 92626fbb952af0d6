import type { MatsSocketServer } from '../server/MatsSocketServer.ts';
import type { ClusterStoreAndForward } from '../store/ClusterStoreAndForward.ts';
import type { DeadLetterSummary, NodeInfo, SessionInfo } from '../store/storeTypes.ts';
import type { AdminQuery } from './adminQuery.ts';
import type { MetricsHistory, MetricsSample } from './MetricsHistory.ts';
import { sessionSummaryOf, type SessionSummary } from './sessionSummary.ts';

/** Sessions listed by `/api/overview` at most. */
const OVERVIEW_SESSIONS = 500;
/** Dead letters listed by `/api/overview` at most. */
const OVERVIEW_DEAD_LETTERS = 200;
/** The largest dead-letter id a cursor may name (ids are database auto-increments). */
const MAX_ID = Number.MAX_SAFE_INTEGER;

/** What the admin API reads besides the server: the outbox depth per session. */
export type AdminStore = Pick<ClusterStoreAndForward, 'getOutboxDepths'>;

/** A session as the admin page shows it. */
export interface AdminSession extends SessionSummary {
  /** Messages in its outbox (not yet ACKed by the client). */
  outboxDepth: number;
  /** Held by this node right now. */
  liveHere: boolean;
}

/** A node as `/api/nodes` lists it. */
export interface AdminNode extends NodeInfo {
  /** The node answering. */
  thisNode: boolean;
}

/** A page of a list: `next` is the cursor of the following page (null on the last one), `total` counts all. */
export interface AdminPage {
  total: number;
  next: string | null;
}

async function adminSessions(
  server: MatsSocketServer,
  store: AdminStore,
  sessions: SessionInfo[],
): Promise<AdminSession[]> {
  const depths = await store.getOutboxDepths(sessions.map((s) => s.id));
  const live = new Set(server.getActiveSessions().map((s) => s.sessionId));
  return sessions.map((s) => ({
    ...sessionSummaryOf(s),
    outboxDepth: depths.get(s.id) ?? 0,
    liveHere: live.has(s.id),
  }));
}

/** `GET /api/overview`: the first sessions with outbox depth, this node's live sessions, the first dead letters. */
export async function adminOverview(server: MatsSocketServer, store: AdminStore): Promise<unknown> {
  const [sessions, sessionTotal, deadLetters, deadLetterTotal] = await Promise.all([
    server.getSessions({ limit: OVERVIEW_SESSIONS }),
    server.getSessionsCount(),
    server.listDeadLetters({ limit: OVERVIEW_DEAD_LETTERS }),
    server.countDeadLetters(),
  ]);
  return {
    node: server.nodeName,
    now: Date.now(),
    sessions: await adminSessions(server, store, sessions),
    sessionTotal,
    liveSessionsHere: server.getActiveSessions().length,
    deadLetters,
    deadLetterTotal,
  };
}

/** `GET /api/nodes`: the cluster's nodes (store rows and session counts), this node marked. */
export async function adminNodes(
  server: MatsSocketServer,
): Promise<{ node: string; now: number; liveSessionsHere: number; connections: number; nodes: AdminNode[] }> {
  const nodes = await server.getNodes();
  return {
    node: server.nodeName,
    now: Date.now(),
    liveSessionsHere: server.getActiveSessions().length,
    connections: server.connectionCount,
    nodes: nodes.map((n) => ({ ...n, thisNode: n.nodeName === server.nodeName })),
  };
}

/**
 * `GET /api/sessions?q=&limit=&after=`: stored sessions of all nodes ordered by session id, those whose user id or
 * session id starts with `q`; `after` is the previous page's `next`.
 */
export async function adminSessionPage(
  server: MatsSocketServer,
  store: AdminStore,
  query: AdminQuery,
): Promise<AdminPage & { sessions: AdminSession[] }> {
  const q = query.text('q');
  const after = query.text('after');
  const limit = query.limit();
  const filter = q === undefined ? {} : { idPrefix: q };
  const [rows, total] = await Promise.all([
    server.getSessions({ ...filter, limit, ...(after !== undefined ? { afterSessionId: after } : {}) }),
    server.getSessionsCount(filter),
  ]);
  return {
    sessions: await adminSessions(server, store, rows),
    total,
    next: rows.length === limit ? rows[rows.length - 1]!.id : null,
  };
}

/** `GET /api/dead-letters?limit=&before=`: newest first; `before` is the previous page's `next` (an id). */
export async function adminDeadLetterPage(
  server: MatsSocketServer,
  query: AdminQuery,
): Promise<AdminPage & { deadLetters: DeadLetterSummary[] }> {
  const before = query.int('before', 1, MAX_ID);
  const limit = query.limit();
  const [deadLetters, total] = await Promise.all([
    server.listDeadLetters({
      newestFirst: true,
      limit,
      ...(before !== undefined ? { beforeId: before } : {}),
    }),
    server.countDeadLetters(),
  ]);
  return {
    deadLetters,
    total,
    next: deadLetters.length === limit ? String(deadLetters[deadLetters.length - 1]!.id) : null,
  };
}

/** `GET /api/metrics/history?since=`: the samples taken after `since` (epoch ms), oldest first. */
export function adminMetricsHistory(
  server: MatsSocketServer,
  history: MetricsHistory,
  query: AdminQuery,
): { node: string; intervalMs: number; capacity: number; samples: MetricsSample[] } {
  const since = query.int('since', 0, MAX_ID);
  return {
    node: server.nodeName,
    intervalMs: history.intervalMs,
    capacity: history.capacity,
    samples: history.samples(since),
  };
}
