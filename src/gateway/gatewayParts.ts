/**
 * The parts of a gateway node that other components provide: the authentication plugin (insecure-dev, or the JWT
 * plugin of `src/server/auth/jwt/`) and the node's plain HTTP handlers (`src/ops/`). This is the only file of the
 * gateway that knows those components; each is wired through one function here.
 */
import type { Registry } from 'prom-client';
import type { NodeHttpHandler } from '../cli/NodeAssembly.ts';
import { perNodeHttpHandler } from '../cli/perNodeHttpHandler.ts';
import type { Logger } from '../logging.ts';
import type { Metrics } from '../metrics/Metrics.ts';
import type { MetricsHistory } from '../ops/MetricsHistory.ts';
import { createOpsHandler } from '../ops/opsHandler.ts';
import { jwtAuthentication } from '../server/auth/jwt/jwtAuthentication.ts';
import type { AuthenticationPluginFactory } from '../server/auth/AuthenticationPlugin.ts';
import type { GatewayAuthConfig, GatewayConfig } from './GatewayConfig.ts';
import { insecureDevAuthentication } from './insecureDevAuthentication.ts';
import { isLoopbackHost } from './loopback.ts';
import type { TopicAuthorizer } from './TopicAuthorizer.ts';
import { withTopicAuthorization } from './withTopicAuthorization.ts';

/**
 * The authentication plugin factory for `auth`, with the configuration's topic rules as its topic decision.
 * Logs a warning for insecure-dev, louder on a non-loopback address.
 */
export function createGatewayAuthentication(
  auth: GatewayAuthConfig,
  listenHost: string,
  topics: TopicAuthorizer,
  logger: Logger,
): AuthenticationPluginFactory {
  const authorizeTopic = (principal: unknown, topicId: string): boolean =>
    topics.maySubscribe(principal, topicId);
  switch (auth.type) {
    case 'insecure-dev': {
      const exposed = !isLoopbackHost(listenHost);
      logger.warn(
        { auth: auth.type, host: listenHost },
        `INSECURE AUTHENTICATION (auth.type: insecure-dev): every client is whoever its authorization value names, ` +
          `with no password or token. For development only.${
            exposed
              ? ` The node listens on ${listenHost}, which other machines reach (allowInsecureNonLoopback: true): ` +
                'anyone who can connect can act as any user.'
              : ''
          }`,
      );
      return withTopicAuthorization(insecureDevAuthentication(), authorizeTopic);
    }
    case 'jwt':
      // The JWT plugin's principal is { userId, roles, claims }: the GatewayPrincipal the rules read.
      return withTopicAuthorization(
        jwtAuthentication({
          algorithms: auth.algorithms,
          ...(auth.secret !== undefined ? { secret: auth.secret } : {}),
          ...(auth.publicKeyPem !== undefined ? { publicKeyPem: auth.publicKeyPem } : {}),
          ...(auth.jwksUrl !== undefined ? { jwksUrl: auth.jwksUrl } : {}),
          ...(auth.issuer !== undefined ? { issuer: auth.issuer } : {}),
          ...(auth.audience !== undefined ? { audience: auth.audience } : {}),
          userIdClaim: auth.userIdClaim,
          rolesClaim: auth.rolesClaim,
          clockToleranceSec: auth.clockToleranceSec,
          logger,
        }),
        authorizeTopic,
      );
  }
}

/** What the node's plain HTTP handlers get to work with. */
export interface GatewayHttpContext {
  readonly config: GatewayConfig;
  /** The node's Prometheus registry (its MatsSocket and Mats metrics). */
  readonly registry: Registry;
  /** The node's metrics (on `registry`): the ops handler counts its refusals there. */
  readonly metrics: Metrics;
  /** The node's sampled metrics, for the admin page's charts. */
  readonly metricsHistory: MetricsHistory;
  readonly logger: Logger;
}

/**
 * The node's handler for plain HTTP requests (everything but the WebSocket upgrade): the operator surface of
 * src/ops (docs/operations.md): `/metrics`, `/health` (`/health/live`, `/health/ready`), the admin page (`/admin`)
 * and its API when `admin.token` is set (Host: loopback names, the bind address and `admin.allowedHosts`), the
 * server API when `serverApi.key` is set, and the clients' out-of-band `close_session`.
 */
export function createGatewayHttpHandler(context: GatewayHttpContext): NodeHttpHandler {
  const { config } = context;
  return perNodeHttpHandler((node) =>
    createOpsHandler({
      server: node.server,
      store: node.store,
      transport: node.transport,
      registry: context.registry,
      metrics: context.metrics,
      adminToken: config.admin.token,
      allowedHosts: [...config.admin.allowedHosts, ...bindHostNames(config.listen.host)],
      // The page itself asks for the token; without one configured neither it nor its API is served.
      ...(config.admin.token !== undefined ? { adminPage: true as const } : {}),
      metricsHistory: context.metricsHistory,
      serverApiKey: config.serverApi.key,
      webSocketPath: config.listen.path,
      logger: context.logger,
    }),
  );
}

/** The bind address as a `Host` name (none for the wildcard addresses). */
function bindHostNames(host: string): string[] {
  if (host === '0.0.0.0' || host === '::' || host === '[::]') return [];
  return [host.includes(':') && !host.startsWith('[') ? `[${host}]` : host.toLowerCase()];
}
