import type { MatsSocketServer } from '../server/MatsSocketServer.ts';

/** Live sessions listed by `/api/introspection` at most. */
const MAX_LIVE_SESSIONS = 500;

/**
 * `GET /api/introspection` (docs/operations.md §4): this node's name, the implementation's name and version, the
 * registered endpoints, and the sessions it holds (up to 500, sorted by id) with their state, without their last
 * envelopes (`/api/live-sessions/<sid>` has those) but with how many are kept.
 */
export function adminIntrospection(server: MatsSocketServer): unknown {
  const live = server.getActiveSessions();
  return {
    node: server.nodeName,
    implementation: server.implementation,
    now: Date.now(),
    endpoints: server.getEndpoints(),
    liveSessionsTotal: live.length,
    liveSessions: live
      .slice(0, MAX_LIVE_SESSIONS)
      .map(({ lastEnvelopes, ...session }) => ({ ...session, envelopesKept: lastEnvelopes.length })),
  };
}
