/**
 * WebSocket close codes of the protocol (docs/protocol.md section 6), what each side does when a connection ends with
 * one, and close-reason truncation (RFC 6455 allows 123 bytes of UTF-8).
 */
export const CloseCode = {
  /** Not used by the protocol. Treated as "deregister". */
  NORMAL: 1000,
  /** From the client: the session is over. From the server: idle timeout; the client should reconnect. */
  GOING_AWAY: 1001,
  /** Local code for a dropped TCP connection; nobody sends it. */
  ABNORMAL: 1006,
  /** Authentication failed, HELLO missing or twice, wrong user on resume, too many sessions, ... */
  VIOLATED_POLICY: 1008,
  /** A frame exceeded the current size limit. */
  MESSAGE_TOO_BIG: 1009,
  /** Server error: the store is unavailable at HELLO, or an unrecoverable inconsistency. */
  UNEXPECTED_CONDITION: 1011,
  /** The node is stopping: reconnect, probably to another node. */
  SERVICE_RESTART: 1012,
  /** Terminate the session (client `close()` or server `closeSession`). */
  CLOSE_SESSION: 4000,
  /** HELLO asked to resume a session that does not exist (any more). */
  SESSION_LOST: 4001,
  /** Please reconnect. */
  RECONNECT: 4002,
  /** Another connection took over this session; the client does not reconnect on its own. */
  DISCONNECT: 4003,
  /** Malformed frame, missing field, control message before HELLO, unknown type, ... */
  MATS_SOCKET_PROTOCOL_ERROR: 4004,
} as const;

export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

const names = new Map<number, string>(Object.entries(CloseCode).map(([name, code]) => [code, name]));

/** The name of a close code (`'CLOSE_SESSION'` for 4000), or `'UNKNOWN(<code>)'`. */
export function closeCodeName(code: number): string {
  return names.get(code) ?? `UNKNOWN(${code})`;
}

/** What the server does with the session bound to a connection that ended (section 6). */
export type ServerSessionAction = 'terminate' | 'deregister';

/** Who sent the close frame. A TCP drop without a close frame counts as the client (code 1006). */
export type CloseInitiator = 'server' | 'client';

const serverClosedTerminates: ReadonlySet<number> = new Set([1008, 1011, 4000, 4001, 4004]);
const clientClosedTerminates: ReadonlySet<number> = new Set([1001, 1008, 1011, 4000, 4001, 4004]);

/**
 * Server side: terminate or deregister the session when its connection ended with `code`, closed by `initiator`
 * (section 6). The server must track whether it closed the connection itself, since 1001 means opposite things.
 * Server-closed codes not in the table (for example 1000) deregister. The one exception the table cannot see, the
 * 1008 "does not match" close of a resume by another user (section 8.3), terminates nothing: it is the caller's.
 */
export function serverSessionActionOnClose(code: number, initiator: CloseInitiator): ServerSessionAction {
  const terminating = initiator === 'server' ? serverClosedTerminates : clientClosedTerminates;
  return terminating.has(code) ? 'terminate' : 'deregister';
}

/**
 * What a client does when the server closed (or the network dropped) its connection with `code`:
 * - `'closeSession'` (1008, 1011, 4000, 4001, 4004): reject everything outstanding and forget the session;
 * - `'awaitNewMessage'` (4003): keep the session, but reconnect only when a new message is enqueued;
 * - `'reconnect'` (anything else): keep the session and reconnect with back-off, resuming with HELLO `sid`.
 */
export type ClientCloseAction = 'closeSession' | 'awaitNewMessage' | 'reconnect';

const clientSessionClosingCodes: ReadonlySet<number> = new Set([1008, 1011, 4000, 4001, 4004]);

/** The client's reaction to a close with `code` (section 6, "Client side"). */
export function clientActionOnClose(code: number): ClientCloseAction {
  if (clientSessionClosingCodes.has(code)) return 'closeSession';
  if (code === CloseCode.DISCONNECT) return 'awaitNewMessage';
  return 'reconnect';
}

/** The RFC 6455 limit for a close reason, in UTF-8 bytes. */
export const MAX_CLOSE_REASON_BYTES = 123;

function utf8Length(codePoint: number): number {
  if (codePoint < 0x80) return 1;
  if (codePoint < 0x800) return 2;
  if (codePoint < 0x10000) return 3;
  return 4;
}

/**
 * Truncates `reason` so that its UTF-8 encoding is at most `maxBytes` (default 123) bytes, never splitting a
 * character. A lone surrogate counts as the 3 bytes of U+FFFD, which is what an encoder writes for it.
 */
export function truncateCloseReason(reason: string, maxBytes: number = MAX_CLOSE_REASON_BYTES): string {
  let bytes = 0;
  let end = 0;
  for (const char of reason) {
    const size = utf8Length(char.codePointAt(0) ?? 0);
    if (bytes + size > maxBytes) break;
    bytes += size;
    end += char.length;
  }
  return reason.slice(0, end);
}
