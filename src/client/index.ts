/**
 * The typed client's entry, `matssocket-ts/client`: the client and everything its API hands out, nothing of the
 * server. Only browser-safe modules are reachable from here (no Node built-ins, no packages), so it runs in Node
 * and in browsers through any bundler; it is also the entry of the prebuilt browser bundles
 * (`npm run build:browser`). test/unit/client/browserBundle.test.ts and test/package check that it stays so.
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
export { PreconnectFailedError } from './preconnect.ts';
export type { PreconnectInfo, PreconnectOption } from './preconnect.ts';
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
