import type { DebugInfo } from '../protocol/envelopes.ts';
import type { DebugInformation } from './clientEvents.ts';

/**
 * Turns the server's `debug` object into {@link DebugInformation}. For replies, `request` carries what the client
 * asked for and when it sent the request; server-initiated messages have no request side.
 */
export function toDebugInformation(
  debug: DebugInfo | undefined,
  receivedTimestamp: number,
  request?: { requested: number; sentTimestamp: number },
): DebugInformation {
  const info: DebugInformation = { resolved: debug?.resd ?? 0, messageReceived: receivedTimestamp };
  if (request) {
    info.requested = request.requested;
    info.clientMessageSent = request.sentTimestamp;
  }
  if (!debug) return info;
  const set = <K extends keyof DebugInformation>(key: K, value: DebugInformation[K] | undefined): void => {
    if (value !== undefined) info[key] = value;
  };
  set('clientMessageReceived', debug.cmrts);
  set('clientMessageReceivedNodename', debug.cmrnn);
  set('matsMessageSent', debug.mmsts);
  set('matsMessageReplyReceived', debug.mmrrts);
  set('matsMessageReplyReceivedNodename', debug.mmrrnn);
  set('serverMessageCreated', debug.smcts);
  set('serverMessageCreatedNodename', debug.smcnn);
  set('messageSentToClient', debug.mscts);
  set('messageSentToClientNodename', debug.mscnn);
  return info;
}
