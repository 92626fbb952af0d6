import type { MatsSocketConnection } from '../connection/MatsSocketConnection.ts';
import type { MessageEvent } from '../ServerEvents.ts';

/**
 * A session held by this node, as `getActiveSessions()` reports it: a snapshot, like the reference's
 * `ActiveMatsSocketSessionDto` (its field names in brackets). Timestamps are epoch ms.
 */
export interface ActiveSessionInfo {
  /** [id] */
  sessionId: string;
  /** The WebSocket connection holding the session on this node (never sent to the client). */
  connectionId: string;
  /** This node [nn]. */
  nodeName: string;
  /** The user of the last successful authentication [uid]. */
  userId: string | undefined;
  /** [an] */
  appName: string;
  /** [av] */
  appVersion: string;
  /** The client library and runtime from HELLO [clv]. */
  clientLib: string;
  /** The connection's peer: a proxy's address when behind one, unless the plugin set it [rip]. */
  remoteAddress: string | undefined;
  /**
   * The client's address behind proxies: the first `X-Forwarded-For` address unless the plugin set it
   * (`setOriginatingRemoteAddress`). The client can write that header, so trust it only behind your own proxy [ocrip].
   */
  originatingAddress: string | undefined;
  /** The WebSocket connection opened. */
  openedTimestamp: number;
  /** The session was established (NEW or RECONNECT) on this connection [sets]. */
  establishedTimestamp: number;
  /** The last authenticated/stillValid evaluation [lauthts]. */
  lastAuthenticatedTimestamp: number;
  /** When the authorization in force expires, if the plugin told (the JWT plugin does). */
  authorizationExpiresAt: number | undefined;
  /** The last PING from the client; undefined before the first [lcpts]. */
  lastClientPingTimestamp: number | undefined;
  /**
   * The last information-bearing message received (SEND, REQUEST, RESOLVE, REJECT) or sent (also PUB); the
   * establishment before any [lactts].
   */
  lastActivityTimestamp: number;
  /** The last frame of any kind, or WebSocket pong, from the client. */
  lastInboundTimestamp: number;
  /** The topics the session subscribes to, sorted [subs]. */
  topics: string[];
  /** The last envelopes of the connection (section 12: 200), oldest first [msgs]. */
  lastEnvelopes: readonly MessageEvent[];
}

/** The snapshot of an established connection; `topics` are its subscriptions. */
export function activeSessionInfo(conn: MatsSocketConnection, topics: string[]): ActiveSessionInfo {
  const auth = conn.auth;
  return {
    sessionId: conn.sessionId!,
    connectionId: conn.connectionId,
    nodeName: conn.core.options.nodeName,
    userId: auth.userId,
    appName: conn.appName,
    appVersion: conn.appVersion,
    clientLib: conn.clientLib,
    remoteAddress: auth.remoteAddress,
    originatingAddress: auth.originatingAddress,
    openedTimestamp: conn.openedTs,
    establishedTimestamp: conn.establishedTs,
    lastAuthenticatedTimestamp: auth.lastAuthenticatedTimestamp,
    authorizationExpiresAt: auth.authorizationExpiresAt,
    lastClientPingTimestamp: conn.lastClientPingTs === 0 ? undefined : conn.lastClientPingTs,
    lastActivityTimestamp: conn.lastActivityTs,
    lastInboundTimestamp: conn.lastInboundTs,
    topics,
    lastEnvelopes: conn.recorder.entries(),
  };
}
