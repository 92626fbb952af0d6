import type { Knex } from 'knex';
import type { Logger } from '../../logging.ts';
import type { MatsInitiate } from '../../mats/MatsInitiate.ts';
import type { StageContext } from '../../mats/StageContext.ts';
import type { ConnectionInfo } from '../auth/AuthenticationPlugin.ts';

/**
 * What an incoming handler is handling: a client SEND or REQUEST to a server endpoint, a client RESOLVE/REJECT to
 * a server REQUEST, or (BR-4) a client NACK or a TIMEOUT of a server REQUEST, delivered to its reply terminator.
 */
export type IncomingMessageType = 'SEND' | 'REQUEST' | 'RESOLVE' | 'REJECT' | 'NACK' | 'TIMEOUT';

/** Options of `forwardEssential` / `forwardNonessential`. */
export interface ForwardOptions {
  /** Trace properties for the backend flow. */
  traceProperties?: Record<string, unknown>;
  /** String sideloads (in addition to `matsSocketSessionId`). */
  strings?: Record<string, string>;
  /** Bytes sideloads. */
  bytes?: Record<string, Uint8Array>;
}

/**
 * The context of one incoming message. Exactly one of `deny`, `forward*`, `resolve`, `reject` may be called; a
 * second call throws (`SERVER_ILLEGAL_CALL`). `resolve`/`reject` are only allowed for a REQUEST.
 */
export interface IncomingContext<I = unknown, R = unknown> {
  readonly endpointId: string;
  readonly messageType: IncomingMessageType;
  /** The message (parsed JSON); undefined for NACK/TIMEOUT and an absent `msg`. */
  readonly message: I;
  /** The client's `tid` unchanged (for C2S replies, NACK and TIMEOUT: the server request's traceId). */
  readonly traceId: string;
  readonly sessionId: string;
  /** The client message id (SEND/REQUEST/RESOLVE/REJECT). */
  readonly cmid: string | undefined;
  /** For replies to server requests: the server request's smid. */
  readonly smid: string | undefined;
  /** Absent for TIMEOUT when the session is not live here. */
  readonly userId: string | undefined;
  readonly principal: unknown;
  /** The authorization value in force (never log it above debug). */
  readonly authorizationValue: string | undefined;
  /** The connection's handshake information (absent without a live connection: TIMEOUT, remote NACK). */
  readonly connectionInfo: ConnectionInfo | undefined;
  /** Resolved debug options of this message (`rd AND allowed` for a REQUEST). */
  readonly resolvedDebugOptions: number;
  /** The client's request timeout `to` (REQUEST), in ms. */
  readonly clientTimeoutMs: number | undefined;
  /** For replies to server requests (RESOLVE/REJECT/NACK/TIMEOUT): the correlation given to `request(...)`. */
  readonly correlationString: string | undefined;
  readonly correlationBinary: Uint8Array | undefined;
  /** NACK: the client's description. */
  readonly description: string | undefined;
  readonly log: Logger;

  deny(): void;
  /** Forwards to a backend endpoint: interactive, persistent. A REQUEST's reply comes back through the reply adapter. */
  forwardEssential(toEndpointId: string, message: unknown, options?: ForwardOptions): void;
  /** Interactive, non-persistent, no-audit; TTL = `to` + 15000 ms when the REQUEST had `to`. */
  forwardNonessential(toEndpointId: string, message: unknown, options?: ForwardOptions): void;
  /** Interactive plus whatever `customize` sets (trace properties, sideloads, flags). */
  forward(toEndpointId: string, message: unknown, customize: (init: MatsInitiate) => void): void;
  /** REQUEST only: answer at once (insta RESOLVE). */
  resolve(reply: R): void;
  /** REQUEST only: answer at once (insta REJECT). */
  reject(reply: unknown): void;
  /**
   * A database transaction for the handler's own work (begun on first call). The handling then commits in it:
   * inbox row, the handler's SQL, forwards and `server.send/request` calls, atomically.
   */
  getSql(): Promise<Knex.Transaction>;
}

/** The context of a reply adapter: the backend's reply to a forwarded REQUEST. Decide with resolve or reject. */
export interface ReplyAdapterContext<R = unknown> {
  readonly endpointId: string;
  readonly sessionId: string;
  readonly cmid: string;
  readonly traceId: string;
  readonly resolvedDebugOptions: number;
  /** The backend reply. */
  readonly reply: unknown;
  /** The reply's stage context: trace properties (`getTraceProperty`), sideloads (`getString`), ... */
  readonly stageContext: StageContext;
  readonly log: Logger;
  resolve(reply: R): void;
  reject(reply: unknown): void;
}

export type IncomingHandler<I = unknown, R = unknown> = (ctx: IncomingContext<I, R>) => void | Promise<void>;
export type ReplyAdapter<R = unknown> = (ctx: ReplyAdapterContext<R>) => void | Promise<void>;

/** The kinds of MatsSocket endpoint (docs/compat-test-server.md 5.2). */
export type EndpointKind = 'endpoint' | 'direct' | 'terminator';

/** A registered MatsSocket endpoint. */
export interface MatsSocketEndpointDefinition {
  readonly endpointId: string;
  readonly kind: EndpointKind;
  readonly incoming: IncomingHandler;
  readonly replyAdapter: ReplyAdapter | undefined;
  /** Insta replies of this endpoint go out at once (the built-in `MatsSocket.matsSocketPing`). */
  readonly immediateReplies: boolean;
}

/** NACK descriptions of docs/protocol.md 8.8. */
export const IncomingDescriptions = {
  nonExisting: (type: string) => `An incoming ${type} envelope targeted a non-existing MatsSocketEndpoint`,
  terminator:
    "An incoming REQUEST envelope targeted a MatsSocketEndpoint which is a Terminator, i.e. it won't ever reply",
  ignoredRequest: 'An incoming REQUEST envelope was ignored by the MatsSocket incoming handler.',
  denied: (type: string) => `An incoming ${type} envelope was denied by the MatsSocket incoming handler.`,
  adapterUndecided: "ReplyAdapter didn't decide what action, thus REJECT.",
} as const;
