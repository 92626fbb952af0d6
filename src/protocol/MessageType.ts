/**
 * The `t` values of MatsSocket envelopes (docs/protocol.md section 4), as an `as const` object plus its union type.
 * This module has no I/O and no Node-only imports: it runs in browsers too.
 */
export const MessageType = {
  /** C→S: create a new session, or resume the session `sid`. */
  HELLO: 'HELLO',
  /** S→C: session established; always the first frame the server sends on a connection. */
  WELCOME: 'WELCOME',
  /** Both: fire-and-forget to a server endpoint (C→S) or a client terminator (S→C). */
  SEND: 'SEND',
  /** Both: request to a server endpoint (C→S) or a client endpoint (S→C). */
  REQUEST: 'REQUEST',
  /** Both: positive reply to a REQUEST. */
  RESOLVE: 'RESOLVE',
  /** Both: negative reply to a REQUEST. */
  REJECT: 'REJECT',
  /** Both: the receiver took responsibility for information-bearing messages. */
  ACK: 'ACK',
  /** Both: the receiver refused information-bearing messages. */
  NACK: 'NACK',
  /** Both: "I have your ACK/NACK": the other side may forget the ids. */
  ACK2: 'ACK2',
  /** S→C: the server could not accept the message now; resend later with back-off. */
  RETRY: 'RETRY',
  /** C→S: subscribe to a topic. */
  SUB: 'SUB',
  /** C→S: unsubscribe from a topic. No reply. */
  UNSUB: 'UNSUB',
  /** S→C: subscription OK. */
  SUB_OK: 'SUB_OK',
  /** S→C: subscribed, but messages since the given `smid` may be lost. */
  SUB_LOST: 'SUB_LOST',
  /** S→C: not authorized for the topic; not subscribed. */
  SUB_NO_AUTH: 'SUB_NO_AUTH',
  /** S→C: a topic message. Not acknowledged. */
  PUB: 'PUB',
  /** S→C: the server needs a fresh authorization before it continues. */
  REAUTH: 'REAUTH',
  /** C→S: a new authorization value, when there is no other envelope to piggy-back it on. */
  AUTH: 'AUTH',
  /** C→S: keepalive and round-trip measurement. */
  PING: 'PING',
  /** S→C: answer to PING (a C→S PONG is accepted and ignored). */
  PONG: 'PONG',
} as const;

export type MessageType = (typeof MessageType)[keyof typeof MessageType];

/** The message types a client may send (section 4). Anything else from a client is a protocol error (4004). */
export const clientToServerTypes: ReadonlySet<MessageType> = new Set<MessageType>([
  'HELLO',
  'SEND',
  'REQUEST',
  'RESOLVE',
  'REJECT',
  'ACK',
  'NACK',
  'ACK2',
  'SUB',
  'UNSUB',
  'AUTH',
  'PING',
  'PONG',
]);

/** The message types a server may send (section 4). */
export const serverToClientTypes: ReadonlySet<MessageType> = new Set<MessageType>([
  'WELCOME',
  'SEND',
  'REQUEST',
  'RESOLVE',
  'REJECT',
  'ACK',
  'NACK',
  'ACK2',
  'RETRY',
  'SUB_OK',
  'SUB_LOST',
  'SUB_NO_AUTH',
  'PUB',
  'REAUTH',
  'PONG',
]);

const informationBearing: ReadonlySet<string> = new Set(['SEND', 'REQUEST', 'RESOLVE', 'REJECT']);

/** SEND, REQUEST, RESOLVE and REJECT: stored, acknowledged, de-duplicated and retransmitted (section 1). */
export function isInformationBearing(t: string): t is 'SEND' | 'REQUEST' | 'RESOLVE' | 'REJECT' {
  return informationBearing.has(t);
}

/** True if `t` is one of the known message types (either direction). */
export function isMessageType(t: unknown): t is MessageType {
  return typeof t === 'string' && Object.prototype.hasOwnProperty.call(MessageType, t);
}
