/**
 * The parts of a gateway node that other components provide: the authentication plugin and the node's plain HTTP
 * handlers. This is the only file of the gateway that knows those components; each is wired through one function
 * here. Two seams are still open (marked TODO): JWT authentication (`src/server/auth/jwt/`) and the operations
 * HTTP handlers (`src/ops/`).
 */
import type { Registry } from 'prom-client';
import type { NodeHttpHandler } from '../cli/NodeAssembly.ts';
import { ConfigError } from '../errors.ts';
import type { Logger } from '../logging.ts';
import type { AuthenticationPluginFactory } from '../server/auth/AuthenticationPlugin.ts';
import type { GatewayAuthConfig, GatewayConfig } from './GatewayConfig.ts';
import { insecureDevAuthentication } from './insecureDevAuthentication.ts';
import { isLoopbackHost } from './loopback.ts';
import type { TopicAuthorizer } from './TopicAuthorizer.ts';
import { withTopicAuthorization } from './withTopicAuthorization.ts';

/**
 * The authentication plugin factory for `auth`, with the configuration's topic rules as its topic decision.
 * Logs a warning for insecure-dev, louder on a non-loopback address.
 * @throws ConfigError (`auth.type`) for `jwt` until the JWT plugin is wired below.
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
      // TODO(jwt seam): when src/server/auth/jwt/ is merged, replace the throw with
      //   return withTopicAuthorization(
      //     jwtAuthentication({
      //       algorithms: auth.algorithms, secret: auth.secret, publicKeyPem: auth.publicKeyPem,
      //       jwksUrl: auth.jwksUrl, issuer: auth.issuer, audience: auth.audience, userIdClaim: auth.userIdClaim,
      //       rolesClaim: auth.rolesClaim, clockToleranceSec: auth.clockToleranceSec,
      //     }),
      //     authorizeTopic,
      //   );
      // (issuer/audience are lists here; pass them as the plugin takes them.) Its principal must have the
      // GatewayPrincipal shape { userId, roles, claims } for the topic and endpoint rules to admit anyone.
      throw new ConfigError(
        'auth.type',
        'jwt: the JWT authentication plugin is not wired into the gateway in this build (src/gateway/gatewayParts.ts)',
      );
  }
}

/** What the node's plain HTTP handlers get to work with. */
export interface GatewayHttpContext {
  readonly config: GatewayConfig;
  /** The node's Prometheus registry (its MatsSocket and Mats metrics). */
  readonly registry: Registry;
  readonly logger: Logger;
}

/**
 * The node's handler for plain HTTP requests (everything but the WebSocket upgrade); undefined answers 404 to all.
 */
export function createGatewayHttpHandler(context: GatewayHttpContext): NodeHttpHandler | undefined {
  // TODO(ops seam): when src/ops/ is merged, return its handler here, e.g.
  //   return createOpsHandler({
  //     registry: context.registry,                          // GET /metrics
  //     adminToken: context.config.admin.token,               // /api/… (admin API off when undefined)
  //     adminAllowedHosts: [...context.config.admin.allowedHosts, <the bind address as a Host name>],
  //     serverApiKey: context.config.serverApi.key,           // the backends' server API (off when undefined)
  //     logger: context.logger,
  //   });                                                     // plus GET /health
  // Until then the node serves only the WebSocket; admin.* and serverApi.* are validated but not used.
  void context;
  return undefined;
}
