/**
 * Every error this library throws is a {@link MatsSocketError} with a stable `code` from {@link ErrorCode}
 * and, where another error caused it, that error as `cause`. Match on `code`, never on message text.
 *
 * The class hierarchy encodes what a caller can do about it:
 * - {@link ConfigError}: fix the configuration (the message names the field);
 * - {@link DataAccessError} / {@link TransportError}: infrastructure is failing; retry later;
 * - the rest are domain outcomes that callers branch on.
 */

export const ErrorCode = {
  /** An option or environment variable has an invalid value. The message names the field. */
  CONFIG_INVALID: 'CONFIG_INVALID',
  /** The database failed, refused the connection, or timed out. `cause` is the driver's error. */
  DATA_ACCESS: 'DATA_ACCESS',
  /** The database schema is not at the latest migration and `migrate` is off. */
  SCHEMA_OUTDATED: 'SCHEMA_OUTDATED',
  /** Another process held the database's migration lock longer than the migrator would wait. */
  MIGRATION_LOCK_TIMEOUT: 'MIGRATION_LOCK_TIMEOUT',
  /** A unique id (session id, cmid in the inbox, smid in the outbox) already exists. */
  MESSAGE_ID_EXISTS: 'MESSAGE_ID_EXISTS',
  /** A session was resumed by another user than the one who created it. */
  WRONG_USER: 'WRONG_USER',
  /** The session does not exist (any more). */
  SESSION_NOT_FOUND: 'SESSION_NOT_FOUND',
  /** The broker connection is down, or a publish could not be confirmed. */
  TRANSPORT_UNAVAILABLE: 'TRANSPORT_UNAVAILABLE',
  /** The broker did not confirm a publish within `confirmTimeoutMs` (e.g. connection blocked by an alarm). */
  TRANSPORT_CONFIRM_TIMEOUT: 'TRANSPORT_CONFIRM_TIMEOUT',
  /** The broker negatively acknowledged a publish. */
  TRANSPORT_NACKED: 'TRANSPORT_NACKED',
  /** A mandatory publish was returned: no queue by that name. */
  TRANSPORT_UNROUTABLE: 'TRANSPORT_UNROUTABLE',
  /** The transport (or the object owning it) has been closed. */
  TRANSPORT_CLOSED: 'TRANSPORT_CLOSED',
  /** A queue was declared with arguments that differ from an existing queue's (AMQP 406). */
  TRANSPORT_PRECONDITION_FAILED: 'TRANSPORT_PRECONDITION_FAILED',
  /** The broker closed a channel (404 not found, 406 unknown delivery tag, ...); the transport re-opens it. */
  TRANSPORT_CHANNEL_CLOSED: 'TRANSPORT_CHANNEL_CLOSED',
  /** A message's header table is too large (over `maxHeaderBytes` encoded) or holds a non-primitive value. */
  TRANSPORT_HEADERS_TOO_LARGE: 'TRANSPORT_HEADERS_TOO_LARGE',
  /** Mats: nothing was committed (no DB commit, no messages). */
  MATS_BACKEND: 'MATS_BACKEND',
  /** Mats: the DB committed but the messages could not be published (only with the outbox off). */
  MATS_MESSAGE_SEND: 'MATS_MESSAGE_SEND',
  /** Mats: a stage refused its message; it is dead-lettered at once. */
  MATS_REFUSE_MESSAGE: 'MATS_REFUSE_MESSAGE',
  /** Mats: an illegal use of the API (bad endpoint id, illegal call combination in a stage, ...). */
  MATS_ILLEGAL_CALL: 'MATS_ILLEGAL_CALL',
  /** Mats: a futurized request did not get its reply in time. */
  MATS_FUTURIZER_TIMEOUT: 'MATS_FUTURIZER_TIMEOUT',
  /** Mats: too many outstanding futurized requests. */
  MATS_FUTURIZER_CAPACITY: 'MATS_FUTURIZER_CAPACITY',
  /** A protocol violation in a received frame or envelope. */
  PROTOCOL_ERROR: 'PROTOCOL_ERROR',
  /** Client: the server refused (NACKed) a SEND/REQUEST; the event carries its `desc`. */
  CLIENT_NACKED: 'CLIENT_NACKED',
  /** Client: the server answered a REQUEST with REJECT; the event carries the reply message. */
  CLIENT_REJECTED: 'CLIENT_REJECTED',
  /** Client: a REQUEST got no reply within its timeout. */
  CLIENT_TIMEOUT: 'CLIENT_TIMEOUT',
  /** Client: the session was closed (by `close()`, by the server, or after too many connection attempts). */
  CLIENT_SESSION_CLOSED: 'CLIENT_SESSION_CLOSED',
  /** Client: a message was sent the maximum number of times (RETRY/resend) without being accepted. */
  CLIENT_ATTEMPTS_EXHAUSTED: 'CLIENT_ATTEMPTS_EXHAUSTED',
  /** Client: an API method was called with an illegal argument (reserved id, unknown terminator, ...). */
  CLIENT_ILLEGAL_ARGUMENT: 'CLIENT_ILLEGAL_ARGUMENT',
  /** Client: the preconnect operation before a connection attempt failed; the attempt counts as failed. */
  CLIENT_PRECONNECT_FAILED: 'CLIENT_PRECONNECT_FAILED',
  /** Server: an illegal use of the MatsSocket server API (second decision in a handler, resolve on a SEND, ...). */
  SERVER_ILLEGAL_CALL: 'SERVER_ILLEGAL_CALL',
  /** Server: the MatsSocket server node is stopping or stopped. */
  SERVER_STOPPED: 'SERVER_STOPPED',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class MatsSocketError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** An option or environment variable is invalid; `field` names it. */
export class ConfigError extends MatsSocketError {
  readonly field: string;

  constructor(field: string, message: string) {
    super(ErrorCode.CONFIG_INVALID, `Invalid configuration '${field}': ${message}`);
    this.field = field;
  }
}

/** Any database failure. `cause` holds the driver's error. */
export class DataAccessError extends MatsSocketError {
  constructor(message: string, options?: { cause?: unknown; code?: ErrorCode }) {
    super(options?.code ?? ErrorCode.DATA_ACCESS, message, options);
  }
}

export class MessageIdAlreadyExistsError extends MatsSocketError {
  constructor(message: string) {
    super(ErrorCode.MESSAGE_ID_EXISTS, message);
  }
}

export class WrongUserError extends MatsSocketError {
  constructor(message: string) {
    super(ErrorCode.WRONG_USER, message);
  }
}

export class SessionNotFoundError extends MatsSocketError {
  constructor(message: string) {
    super(ErrorCode.SESSION_NOT_FOUND, message);
  }
}

/** Broker-level failure; `code` says which (unavailable, confirm timeout, nacked, unroutable, closed). */
export class TransportError extends MatsSocketError {}

/** A received frame or envelope violates the protocol. */
export class ProtocolError extends MatsSocketError {
  /** The WebSocket close code to close the connection with (docs/protocol.md section 6); 4004 unless given. */
  readonly closeCode: number;

  constructor(message: string, options?: { cause?: unknown; closeCode?: number }) {
    super(ErrorCode.PROTOCOL_ERROR, message, options);
    this.closeCode = options?.closeCode ?? 4004;
  }
}

/** An illegal use of the MatsSocket server API (code `SERVER_ILLEGAL_CALL`, or `SERVER_STOPPED`). */
export class MatsSocketServerError extends MatsSocketError {}

/**
 * A node tried to start under the name of a node that is alive (its liveliness row in the store is recent). Booting
 * anyway would deregister the live node's sessions. Fix: choose another node name, or stop the other node (a dead
 * node's name is free once its liveliness is older than `nodeDeadAfterMs`). Code `CONFIG_INVALID`, field `nodeName`.
 */
export class NodeNameInUseError extends ConfigError {
  readonly nodeName: string;
  /** When the live node last showed liveliness, epoch ms. */
  readonly lastSeenTs: number;

  constructor(nodeName: string, lastSeenTs: number, ageMs: number) {
    super(
      'nodeName',
      `node '${nodeName}' is running (alive ${(ageMs / 1000).toFixed(1)} s ago): choose another node name, or stop the other node`,
    );
    this.nodeName = nodeName;
    this.lastSeenTs = lastSeenTs;
  }
}
