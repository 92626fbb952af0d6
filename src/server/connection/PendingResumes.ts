import type { ServerCore } from '../ServerCore.ts';
import type { MatsSocketConnection } from './MatsSocketConnection.ts';

interface PendingResume {
  readonly sessionId: string;
  readonly conn: MatsSocketConnection;
}

/** Per node: connection id → the resume it has in the store. */
const pendingByCore = new WeakMap<ServerCore, Map<string, PendingResume>>();

function pendingOf(core: ServerCore): Map<string, PendingResume> {
  let pending = pendingByCore.get(core);
  if (!pending) pendingByCore.set(core, (pending = new Map<string, PendingResume>()));
  return pending;
}

/**
 * Marks `conn` as resuming `sessionId` while the store verifies the user and re-registers the session. Such a
 * connection is deliberately NOT in the local session registry: until the store has proven that the session is its
 * user's, it must not be able to displace the session's holder, swallow its pokes or absorb a close meant for it
 * (a HELLO naming someone else's `sid` must change nothing). Node control still needs to know about it, because the
 * session row may already name it: see {@link pendingResume}. @returns the release function (idempotent).
 */
export function claimPendingResume(
  core: ServerCore,
  sessionId: string,
  conn: MatsSocketConnection,
): () => void {
  const pending = pendingOf(core);
  const entry: PendingResume = { sessionId, conn };
  pending.set(conn.connectionId, entry);
  return () => {
    if (pending.get(conn.connectionId) === entry) pending.delete(conn.connectionId);
  };
}

/**
 * The connection resuming `sessionId` under `connectionId`, if its HELLO is between the store write and the local
 * registration: a poke then must not deregister the fresh registration as stale, and a remote takeover (CloseWS)
 * must still reach it.
 */
export function pendingResume(
  core: ServerCore,
  sessionId: string,
  connectionId: string,
): MatsSocketConnection | undefined {
  const entry = pendingByCore.get(core)?.get(connectionId);
  return entry?.sessionId === sessionId ? entry.conn : undefined;
}

/**
 * Closes the connections resuming `sessionId` with 4000 (the session is being closed server-side, 8.16). The store
 * write deletes the session; without this, a resume committed just before that delete would still WELCOME it.
 */
export function closePendingResumes(core: ServerCore, sessionId: string, reason: string): void {
  for (const { sessionId: sid, conn } of pendingByCore.get(core)?.values() ?? []) {
    if (sid === sessionId) conn.close(4000, `Server Side: ${reason}`, 'none');
  }
}
