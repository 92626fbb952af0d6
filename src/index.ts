/**
 * The library's public surface, `matssocket-ts`: named exports only. Anything not exported here is internal.
 * The client has its own entry, `matssocket-ts/client` (`src/client/index.ts`), which pulls in nothing of the
 * server, so browsers get it without Node built-ins; `matssocket-ts/client/browser` is its prebuilt ESM bundle.
 */

// Errors
export {
  ConfigError,
  DataAccessError,
  ErrorCode,
  MatsSocketError,
  MatsSocketServerError,
  MessageIdAlreadyExistsError,
  NodeNameInUseError,
  ProtocolError,
  SessionNotFoundError,
  TransportError,
  WrongUserError,
} from './errors.ts';
export type { Logger } from './logging.ts';
export { silentLogger } from './logging.ts';

// MatsSocket server
export { MatsSocketServer } from './server/MatsSocketServer.ts';
export type { ListenOptions } from './server/MatsSocketServer.ts';
export type { ActiveSessionInfo } from './server/introspection/ActiveSessionInfo.ts';
export type { EndpointInfo } from './server/introspection/EndpointInfo.ts';
export type { ImplementationInfo } from './server/introspection/implementationInfo.ts';
export type {
  MatsSocketServerOptions,
  ServerJobOptions,
  ServerLimits,
  ServerTimings,
} from './server/MatsSocketServerOptions.ts';
export { authenticated, invalidAuthentication, stillValid } from './server/auth/AuthenticationPlugin.ts';
export type {
  AuthenticationContext,
  AuthenticationPlugin,
  AuthenticationPluginFactory,
  AuthenticationResult,
  ConnectionInfo,
} from './server/auth/AuthenticationPlugin.ts';
export { jwtAuthentication } from './server/auth/jwt/jwtAuthentication.ts';
export type { JwtAlgorithm, JwtAuthenticationOptions } from './server/auth/jwt/JwtAuthenticationOptions.ts';
export type { JwtPrincipal } from './server/auth/jwt/JwtPrincipal.ts';
export type {
  ForwardOptions,
  IncomingContext,
  IncomingHandler,
  IncomingMessageType,
  ReplyAdapter,
  ReplyAdapterContext,
} from './server/messaging/EndpointTypes.ts';
export type { ServerRequestOptions } from './server/messaging/ServerMessaging.ts';
export type {
  DeadLetterEvent,
  IncomingResolution,
  MessageEvent,
  ServerEventMap,
  SessionEstablishedEvent,
  SessionEstablishedType,
  SessionRemovedEvent,
  SessionRemovedType,
} from './server/ServerEvents.ts';

// Mats layer
export { MatsFactory } from './mats/MatsFactory.ts';
export type { MatsFactoryOptions, StageOptions, TraceIdModifier } from './mats/MatsFactoryOptions.ts';
export type { MatsEndpoint } from './mats/MatsEndpoint.ts';
export type { StageContext } from './mats/StageContext.ts';
export type { MatsInitiate } from './mats/MatsInitiate.ts';
export type { InitiateOptions, MatsInitiator } from './mats/MatsInitiator.ts';
export type { FuturizedContext, FuturizedReply, MatsFuturizer } from './mats/MatsFuturizer.ts';
export { currentStageContext, runOutsideStageContext } from './mats/ambientContext.ts';
export {
  MatsBackendError,
  MatsFuturizerCapacityError,
  MatsFuturizerTimeoutError,
  MatsIllegalCallError,
  MatsMessageSendError,
  MatsRefuseMessageError,
} from './mats/MatsErrors.ts';

// Transports
export type { Transport, TransportEventMap, TransportState } from './broker/Transport.ts';
export { InMemoryBroker } from './broker/InMemoryBroker.ts';
export { InMemoryTransport, type InMemoryTransportOptions } from './broker/InMemoryTransport.ts';
export { AmqpTransport } from './broker/AmqpTransport.ts';
export type { AmqpTransportOptions } from './broker/AmqpTransportOptions.ts';
export type { TransportOptions } from './broker/TransportOptions.ts';

// Store
export type { ClusterStoreAndForward } from './store/ClusterStoreAndForward.ts';
export { SqlClusterStore } from './store/SqlClusterStore.ts';
export type { StoreOptions } from './store/StoreOptions.ts';
export { createDatabase, parseDatabaseUrl, redactUrl } from './store/database.ts';
export type { DatabaseOptions, Dialect } from './store/database.ts';
export { migrateLatest } from './store/migrate.ts';

// Metrics
export type { Metrics } from './metrics/Metrics.ts';
export { noopMetrics } from './metrics/Metrics.ts';
export { promMetrics, type PromMetricsOptions } from './metrics/promMetrics.ts';

// Operations: node:http handlers for health, metrics, the admin API, the server API and the side channels
// (docs/operations.md)
export { createOpsHandler, type OpsHandlerOptions } from './ops/opsHandler.ts';
export { chainHttpHandlers, type HttpHandler } from './ops/httpHandler.ts';
export { createHealthHandler, type HealthHandlerOptions } from './ops/healthHandler.ts';
export { checkHealth } from './ops/checkHealth.ts';
export type { HealthPart, HealthReport, HealthTargets } from './ops/checkHealth.ts';
export { createMetricsHandler } from './ops/metricsHandler.ts';
export type { MetricsHandlerOptions, MetricsRegistry } from './ops/metricsHandler.ts';
export { createAdminAccess, type AdminAccess, type AdminAccessOptions } from './ops/adminAccess.ts';
export { createAdminApiHandler, type AdminApiOptions, type AdminSession } from './ops/adminApi.ts';
export {
  createBearerCheck,
  hostNameOf,
  isValidBearerToken,
  LOOPBACK_HOSTS,
  MIN_BEARER_TOKEN_LENGTH,
} from './ops/bearerCheck.ts';
export type { AccessRefusal, BearerCheck, BearerCheckOptions } from './ops/bearerCheck.ts';
export { createCloseSessionHandler, type CloseSessionHandlerOptions } from './ops/closeSessionHandler.ts';
export {
  createPreconnectHandler,
  DEFAULT_PRECONNECT_COOKIE,
  readPreconnectCookie,
  type PreconnectHandlerOptions,
} from './ops/preconnectHandler.ts';
export { createCorsCheck, type CorsCheck, type CorsCheckOptions } from './ops/corsCheck.ts';
export { createServerApiHandler, DEFAULT_SERVER_API_LIMITS } from './ops/serverApi.ts';
export type { ServerApiOptions, ServerApiSession, ServerApiTarget } from './ops/serverApi.ts';
export type { ServerApiLimits } from './ops/serverApiRequests.ts';
export { ServerApiError, ServerApiErrorCode } from './ops/ServerApiError.ts';
// Gateway: a node from a configuration file (docs/gateway.md)
export { GatewayNode, type GatewayNodeOptions } from './gateway/GatewayNode.ts';
export {
  loadGatewayConfig,
  parseGatewayConfig,
  resolveGatewayConfig,
  type LoadedGatewayConfig,
  type LoadGatewayConfigOptions,
} from './gateway/loadGatewayConfig.ts';
export { applyEnvOverrides, type EnvOverrideResult, type EnvRecord } from './gateway/envOverrides.ts';
export {
  formatConfigIssue,
  GatewayConfigError,
  type ConfigIssue,
  type ConfigIssueKind,
} from './gateway/GatewayConfigError.ts';
export { TopicAuthorizer } from './gateway/TopicAuthorizer.ts';
export type {
  AllowRule,
  ForwardMode,
  GatewayAuthConfig,
  GatewayConfig,
  GatewayEndpoint,
  GatewayTerminator,
  InsecureDevAuthConfig,
  JwtAuthConfig,
  TopicRule,
} from './gateway/GatewayConfig.ts';
export type { GatewayPrincipal } from './gateway/GatewayPrincipal.ts';
export type { PublishToTopic, PushToClient } from './gateway/registerGatewayRouting.ts';

// CLI helpers: the pieces `npm start` is made of, for a program of one's own
export { NodeAssembly, ListenError } from './cli/NodeAssembly.ts';
export type { AssembledNode, NodeAssemblyOptions, NodeHttpHandler, NodeSpec } from './cli/NodeAssembly.ts';
export { StopController, type StopControllerOptions } from './cli/StopController.ts';
export { createCliLogger, type LogFormat } from './cli/cliLogger.ts';
export {
  checkStartupTargets,
  describeConnectFailure,
  type ConnectFailureWording,
  type SettingWording,
  type StartupTargets,
} from './cli/startupCheck.ts';
