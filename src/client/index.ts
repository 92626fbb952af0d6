/**
 * Entry point of the browser bundles (`npm run build:browser`): the client and everything its API hands out.
 * Only browser-safe modules are reachable from here; a test checks the bundle for Node built-ins.
 */
export { MatsSocketClient, CLIENT_LIB_NAME_AND_VERSION } from './MatsSocketClient.ts';
export { resolveClientOptions } from './clientOptions.ts';
export type {
  MatsSocketClientOptions,
  OutOfBandCloseInfo,
  RequestOptions,
  RequestReplyToOptions,
  SendOptions,
} from './clientOptions.ts';
export { ReceivedError, ReplyError, ClientUsageError } from './clientErrors.ts';
export { randomId } from './randomId.ts';
export type {
  AuthorizationRequiredEvent,
  AuthorizationRequiredEventType,
  ClientErrorEvent,
  ConnectionEvent,
  ConnectionState,
  DebugInformation,
  InitiationProcessedEvent,
  MatsSocketClientEvents,
  MessageEvent,
  MessageEventType,
  PingPong,
  ReceivedEvent,
  ReceivedEventType,
  SessionClosedEvent,
  SubscriptionEvent,
} from './clientEvents.ts';
export type { WebSocketConstructor, WebSocketLike } from './WebSocketLike.ts';
export { ConfigError, ErrorCode, MatsSocketError } from '../errors.ts';
export { CloseCode, closeCodeName } from '../protocol/closeCodes.ts';
export { DebugOption } from '../protocol/debugOptions.ts';
export { MessageType } from '../protocol/MessageType.ts';
