/**
 * The events and event payloads of {@link MatsSocketClient}. All timestamps are epoch milliseconds (`Date.now()`),
 * all durations milliseconds measured with `performance.now()` where available.
 */

/** The state of the client's connection and session. */
export type ConnectionState =
  /** No session: nothing sent yet, or the session was closed. The next message starts a new session. */
  | 'NO_SESSION'
  /** A WebSocket connection attempt is in progress. */
  | 'CONNECTING'
  /** The last attempt failed; waiting before the next one. */
  | 'WAITING'
  /** The WebSocket is open; HELLO is sent, WELCOME not yet received. */
  | 'CONNECTED'
  /** WELCOME received: the session is established on this connection. */
  | 'SESSION_ESTABLISHED'
  /** The connection was lost but the session lives on; a reconnect is pending (or, after 4003, awaits a message). */
  | 'DISCONNECTED';

/** A connection or session happening, as a discriminated union on `type`. */
export type ConnectionEvent =
  | { type: 'CONNECTING'; url: string; attempt: number; timeoutMs: number }
  | { type: 'WAITING'; url: string; attempt: number; nextAttemptInMs: number }
  | { type: 'CONNECTED'; url: string }
  | { type: 'SESSION_ESTABLISHED'; url: string; sessionId: string; resumed: boolean }
  | {
      type: 'LOST_CONNECTION';
      url: string;
      code: number;
      reason: string;
      /** When the client reconnects on its own, in ms; absent after 4003 (reconnects when a message is sent). */
      reconnectInMs?: number;
    }
  | { type: 'CONNECTION_ERROR'; url: string }
  | {
      type: 'SESSION_CLOSED';
      code: number;
      reason: string;
      /** `client` for `close()`, `server` for a session-closing close code, `local` for a fatal local condition. */
      initiatedBy: 'client' | 'server' | 'local';
    };

/** The server (or a fatal local condition) closed the session. Not fired for the application's own `close()`. */
export interface SessionClosedEvent {
  /** The close code (see `CloseCode` in protocol/closeCodes.ts), or whatever code the server used. */
  code: number;
  /** The close code's name, e.g. `'SESSION_LOST'`. */
  codeName: string;
  reason: string;
  /** How many SENDs/REQUESTs were outstanding (and were rejected with SESSION_CLOSED). */
  outstandingInitiations: number;
}

/** How the server received a SEND/REQUEST (or why it never will). */
export type ReceivedEventType = 'ACK' | 'NACK' | 'TIMEOUT' | 'SESSION_CLOSED' | 'ATTEMPTS_EXHAUSTED';

/** The outcome of a client SEND/REQUEST on the server side: ACK, NACK, or a local failure. */
export interface ReceivedEvent {
  type: ReceivedEventType;
  /** The client message id of the SEND/REQUEST. */
  cmid: string;
  traceId: string;
  /** When the message was enqueued. */
  sentTimestamp: number;
  /** When the outcome arrived (or was decided locally). */
  receivedTimestamp: number;
  /** Enqueue to outcome, ms. */
  roundTripMs: number;
  /** The server's `desc`, e.g. the NACK reason. */
  description?: string;
}

/** The type of a {@link MessageEvent}. */
export type MessageEventType =
  | 'SEND'
  | 'REQUEST'
  | 'RESOLVE'
  | 'REJECT'
  | 'PUB'
  | 'NACK'
  | 'TIMEOUT'
  | 'SESSION_CLOSED'
  | 'ATTEMPTS_EXHAUSTED';

/** Debug information on a received message, from the server's `debug` object (docs/protocol.md section 5). */
export interface DebugInformation {
  /** The debug options the client asked for with the request (replies only). */
  requested?: number;
  /** The options the server resolved (`resd`): requested AND allowed. */
  resolved: number;
  /** When the client sent the request (replies only). */
  clientMessageSent?: number;
  /** `cmrts`: the server received the client message. */
  clientMessageReceived?: number;
  /** `cmrnn`: the node that received the client message. */
  clientMessageReceivedNodename?: string;
  /** `mmsts`: the backend message was sent. */
  matsMessageSent?: number;
  /** `mmrrts`: the backend reply was received. */
  matsMessageReplyReceived?: number;
  /** `mmrrnn`: the node that received the backend reply. */
  matsMessageReplyReceivedNodename?: string;
  /** `smcts`: the server created this server-initiated message. */
  serverMessageCreated?: number;
  /** `smcnn`: the node that created it. */
  serverMessageCreatedNodename?: string;
  /** `mscts`: the server wrote the message to the client. */
  messageSentToClient?: number;
  /** `mscnn`: the node that wrote it. */
  messageSentToClientNodename?: string;
  /** When the client received the message. */
  messageReceived: number;
}

/** A message for the application: a server SEND/REQUEST, a reply, a PUB, or a request's local failure. */
export interface MessageEvent<T = unknown> {
  type: MessageEventType;
  /** The payload (`msg`); `undefined` when the server sent none or the event is a local failure. */
  data: T;
  traceId: string;
  /** The smid of server-initiated messages and PUBs; the cmid of the request for replies and failures. */
  messageId: string;
  receivedTimestamp: number;
  /** Replies: when the request was sent. */
  clientRequestTimestamp?: number;
  /** Replies: request to reply, ms. */
  roundTripMs?: number;
  /** Replies routed with `requestReplyTo`: the correlation information given there (kept locally). */
  correlationInformation?: unknown;
  /** Present when the server sent `debug` (server-initiated) or the request asked for debug (replies). */
  debug?: DebugInformation;
}

/** The server's answer to a SUB. */
export interface SubscriptionEvent {
  type: 'OK' | 'LOST_MESSAGES' | 'NOT_AUTHORIZED';
  topicId: string;
}

/** One PING and, once answered, its round-trip time. */
export interface PingPong {
  pingId: string;
  sentTimestamp: number;
  /** Round trip in ms; absent until the PONG arrives. */
  roundTripMs?: number;
}

/** A SEND, REQUEST or requestReplyTo is finished: ACKed/NACKed (SEND) or replied/failed (requests). */
export interface InitiationProcessedEvent {
  kind: 'SEND' | 'REQUEST' | 'REQUEST_REPLY_TO';
  endpointId: string;
  cmid: string;
  traceId: string;
  sentTimestamp: number;
  /** ms from the first SESSION_ESTABLISHED of this client to the send; 0 before any. */
  sessionEstablishedOffsetMs: number;
  /** Send to ACK/NACK (or the reply standing in for it), ms. */
  acknowledgeRoundTripMs?: number;
  /** The received outcome (ACK, NACK, ...). */
  receivedType: ReceivedEventType;
  /** Requests: how the request ended. */
  replyType?: MessageEventType;
  /** requestReplyTo: the terminator the reply went to. */
  replyToTerminatorId?: string;
  /** Requests: send to reply, ms. */
  requestRoundTripMs?: number;
  /** Requests: the reply event. */
  replyEvent?: MessageEvent;
}

/** Why the client asks the application for a new authorization. */
export type AuthorizationRequiredEventType = 'NOT_PRESENT' | 'EXPIRED' | 'REAUTHENTICATE';

export interface AuthorizationRequiredEvent {
  type: AuthorizationRequiredEventType;
  /** The expiry of the current authorization (EXPIRED only), epoch ms. */
  currentExpiresAt?: number;
}

/** Something went wrong that the client handled: a listener threw, the server sent something unusable, ... */
export interface ClientErrorEvent {
  /** A short kebab-case tag, e.g. `listener-threw`, `bad-frame`, `unknown-terminator`. */
  type: string;
  message: string;
  error?: unknown;
}

/** The client's events: `client.on(name, listener)`. Listeners run synchronously; a throwing one is reported. */
export interface MatsSocketClientEvents {
  /** Every connection and session happening, and every state change. */
  connection: ConnectionEvent;
  /** The server closed the session, or a fatal local condition did; not fired for the application's `close()`. */
  'session:closed': SessionClosedEvent;
  /** SUB_OK, SUB_LOST, SUB_NO_AUTH. */
  subscription: SubscriptionEvent;
  /** A PONG arrived; the event has the round-trip time. */
  'ping:pong': PingPong;
  /** A SEND/REQUEST finished, with timings. */
  'initiation:processed': InitiationProcessedEvent;
  /** A handled error. */
  error: ClientErrorEvent;
}
