/**
 * Envelope types for both directions (docs/protocol.md sections 3 and 4). Parsed client envelopes carry their ids in
 * canonical form: `cmid`, every `ids` element and `x` are strings (section 2.4). Optional fields are absent rather
 * than `null`.
 */

/** Envelope field names (section 3), so code that builds or inspects raw objects spells them one way. */
export const EnvelopeField = {
  /** Message type. Required on every envelope. */
  type: 't',
  /** Client library name and versions plus runtime (HELLO). */
  clientLibVersion: 'clv',
  /** AppName of the client application (HELLO). */
  appName: 'an',
  /** AppVersion of the client application (HELLO). */
  appVersion: 'av',
  /** Authorization value; may ride on any C→S envelope. */
  authorization: 'auth',
  /** Session id (HELLO: resume this one; WELCOME: assigned or confirmed). */
  sessionId: 'sid',
  /** Requested debug options (C→S SEND/REQUEST), a bit field of `DebugOption`. */
  requestedDebug: 'rd',
  /** Target id: endpoint, terminator or topic. */
  endpointId: 'eid',
  /** TraceId. */
  traceId: 'tid',
  /** Server message id. */
  serverMessageId: 'smid',
  /** Client message id. */
  clientMessageId: 'cmid',
  /** Batch of cmids or smids (ACK, NACK, ACK2). */
  ids: 'ids',
  /** Ping id (PING/PONG). */
  pingId: 'x',
  /** The client's request timeout in ms (C→S REQUEST). */
  timeout: 'to',
  /** Human-readable description. */
  description: 'desc',
  /** The payload, any JSON value. */
  message: 'msg',
  /** Debug information (S→C). */
  debug: 'debug',
} as const;

/**
 * Debug information on S→C messages (section 3, "Debug object fields"). Timestamps are epoch milliseconds.
 */
export interface DebugInfo {
  /** Resolved debug options that apply to this message. Present whenever `debug` is. */
  resd?: number;
  /** Client message received by server, timestamp. */
  cmrts?: number;
  /** Client message received, node name. */
  cmrnn?: string;
  /** Backend (broker) message sent, timestamp. */
  mmsts?: number;
  /** Backend reply received, timestamp. */
  mmrrts?: number;
  /** Backend reply received, node name. */
  mmrrnn?: string;
  /** Server-initiated message created, timestamp. */
  smcts?: number;
  /** Server-initiated message created, node name. */
  smcnn?: string;
  /** Message sent to client, timestamp. */
  mscts?: number;
  /** Message sent to client, node name. */
  mscnn?: string;
  /** Log lines (reserved, unused). */
  l?: unknown[];
}

/** Fields any client envelope may carry. */
interface C2SBase {
  /** Authorization value; the last one in a frame wins. */
  auth?: string;
}

// ---- Client to server -------------------------------------------------------------------------------------

export interface C2SHello extends C2SBase {
  t: 'HELLO';
  clv: string;
  an: string;
  av: string;
  sid?: string;
  tid?: string;
}

export interface C2SSend extends C2SBase {
  t: 'SEND';
  eid: string;
  tid: string;
  cmid: string;
  msg?: unknown;
  rd?: number;
}

export interface C2SRequest extends C2SBase {
  t: 'REQUEST';
  eid: string;
  tid: string;
  cmid: string;
  msg?: unknown;
  rd?: number;
  /** The client's request timeout, ms. */
  to?: number;
}

/** The client's reply to a server REQUEST `smid`, under a new client id `cmid`. */
export interface C2SReply extends C2SBase {
  t: 'RESOLVE' | 'REJECT';
  smid: string;
  cmid: string;
  tid: string;
  msg?: unknown;
}

/** The client acknowledges server messages: exactly one of `smid` / `ids` (smids). */
export interface C2SAck extends C2SBase {
  t: 'ACK' | 'NACK';
  smid?: string;
  ids?: string[];
  desc?: string;
}

/** "I have your ACK/NACK/answer": `cmid` and/or `ids` (cmids). */
export interface C2SAck2 extends C2SBase {
  t: 'ACK2';
  cmid?: string;
  ids?: string[];
}

export interface C2SSub extends C2SBase {
  t: 'SUB';
  eid: string;
  /** The last PUB smid the client saw on this topic. */
  smid?: string;
}

export interface C2SUnsub extends C2SBase {
  t: 'UNSUB';
  eid: string;
}

export interface C2SAuth extends C2SBase {
  t: 'AUTH';
  auth: string;
}

export interface C2SPing extends C2SBase {
  t: 'PING';
  x: string;
}

export interface C2SPong extends C2SBase {
  t: 'PONG';
  x?: string;
}

/** Any client-to-server envelope. */
export type C2SEnvelope =
  | C2SHello
  | C2SSend
  | C2SRequest
  | C2SReply
  | C2SAck
  | C2SAck2
  | C2SSub
  | C2SUnsub
  | C2SAuth
  | C2SPing
  | C2SPong;

// ---- Server to client -------------------------------------------------------------------------------------

export interface S2CWelcome {
  t: 'WELCOME';
  sid: string;
  tid?: string;
  desc?: string;
}

/** Server-initiated SEND (to a client terminator) or REQUEST (to a client endpoint). */
export interface S2CSendOrRequest {
  t: 'SEND' | 'REQUEST';
  eid: string;
  tid: string;
  smid: string;
  msg?: unknown;
  debug?: DebugInfo;
}

/** Reply to the client's REQUEST `cmid`; `smid` is present if and only if it came from the outbox. */
export interface S2CReply {
  t: 'RESOLVE' | 'REJECT';
  cmid: string;
  tid: string;
  smid?: string;
  msg?: unknown;
  desc?: string;
  debug?: DebugInfo;
}

/** The server took responsibility for (ACK) or refused (NACK) client messages: `cmid` or `ids` (cmids). */
export interface S2CAck {
  t: 'ACK' | 'NACK';
  cmid?: string;
  ids?: string[];
  desc?: string;
}

/** "I deleted these from my outbox": `smid` or `ids` (smids). */
export interface S2CAck2 {
  t: 'ACK2';
  smid?: string;
  ids?: string[];
}

export interface S2CRetry {
  t: 'RETRY';
  cmid: string;
  desc?: string;
}

export interface S2CSubResult {
  t: 'SUB_OK' | 'SUB_LOST' | 'SUB_NO_AUTH';
  eid: string;
}

export interface S2CPub {
  t: 'PUB';
  eid: string;
  smid: string;
  tid: string;
  msg?: unknown;
  debug?: DebugInfo;
}

export interface S2CReauth {
  t: 'REAUTH';
}

export interface S2CPong {
  t: 'PONG';
  x: string;
}

/** Any server-to-client envelope. */
export type S2CEnvelope =
  | S2CWelcome
  | S2CSendOrRequest
  | S2CReply
  | S2CAck
  | S2CAck2
  | S2CRetry
  | S2CSubResult
  | S2CPub
  | S2CReauth
  | S2CPong;
