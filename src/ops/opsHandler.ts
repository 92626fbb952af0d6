import type { Transport } from '../broker/Transport.ts';
import { ConfigError } from '../errors.ts';
import type { Logger } from '../logging.ts';
import type { Metrics } from '../metrics/Metrics.ts';
import { promMetrics, type PromMetricsOptions } from '../metrics/promMetrics.ts';
import type { MatsSocketServer } from '../server/MatsSocketServer.ts';
import type { ClusterStoreAndForward } from '../store/ClusterStoreAndForward.ts';
import { createAdminAccess } from './adminAccess.ts';
import { createAdminApiHandler } from './adminApi.ts';
import { createCloseSessionHandler } from './closeSessionHandler.ts';
import type { CorsCheck } from './corsCheck.ts';
import { createHealthHandler, type HealthHandlerOptions } from './healthHandler.ts';
import { chainHttpHandlers, type HttpHandler } from './httpHandler.ts';
import { createMetricsHandler } from './metricsHandler.ts';
import { createPreconnectHandler, type PreconnectHandlerOptions } from './preconnectHandler.ts';
import { createServerApiHandler, type ServerApiOptions } from './serverApi.ts';

/** Options of {@link createOpsHandler}. Each part is on when what it needs is given. */
export interface OpsHandlerOptions {
  /** The node's server. */
  server: MatsSocketServer;
  /** The node's store: needed by readiness (`SELECT 1`) and the admin API (outbox depths). */
  store?: Pick<ClusterStoreAndForward, 'knex' | 'getOutboxDepths'> | undefined;
  /** The node's transport: needed by readiness (its connection state). */
  transport?: Pick<Transport, 'state'> | undefined;
  /**
   * The prom-client registry: `/metrics` serves it, and the ops counters (refused requests) go to it unless
   * `metrics` is given. Absent: no `/metrics`.
   */
  registry?: PromMetricsOptions['registry'];
  /** Where the ops counters go. @default promMetrics({ registry }) with a registry, else none */
  metrics?: Metrics | undefined;
  /** Paths of `/metrics`. @default '/metrics' */
  metricsPath?: string | undefined;
  /**
   * Liveness and readiness paths and the database probe's timeout; `false` turns them off. On when `store` and
   * `transport` are given.
   */
  health?:
    false | Pick<HealthHandlerOptions, 'livePath' | 'readyPath' | 'aliasPath' | 'probeTimeoutMs'> | undefined;
  /** The admin API's bearer token (16+ visible ASCII characters); absent: no admin API. Needs `store`. */
  adminToken?: string | undefined;
  /** Host names the admin API accepts in `Host` besides the loopback names. @default [] */
  allowedHosts?: readonly string[] | undefined;
  /** The server API's key (not the admin token); absent: no server API. */
  serverApiKey?: string | undefined;
  /** More server API options: `prefix`, `allowedHosts` (none by default), `maxBodyBytes`, `limits`. */
  serverApi?: Omit<ServerApiOptions, 'server' | 'apiKey' | 'metrics' | 'logger'> | undefined;
  /** The WebSocket path, under which `close_session` and the preconnect live. @default '/matssocket' */
  webSocketPath?: string | undefined;
  /** The out-of-band `close_session`; `false` turns it off. @default on */
  closeSession?: false | { reason?: string | undefined } | undefined;
  /** The preconnect cookie operation; off unless given (the authentication plugin must read the cookie). */
  preconnect?: true | Omit<PreconnectHandlerOptions, 'path' | 'cors'> | undefined;
  /** Origin policy of `close_session` and the preconnect. @default every origin, no CORS headers */
  cors?: CorsCheck | undefined;
  /** Server API failures answered with 500 are logged here. */
  logger?: Logger | undefined;
}

/**
 * One `node:http` handler for a node's whole operator surface (docs/operations.md), for a gateway or your own HTTP
 * server: `/metrics`, `/health/live` and `/health/ready` (and `/health`), the server API (`/api/server/…`), the
 * admin API (`/api/…`), `<ws path>/close_session` and the preconnect. Routes of parts that are off are not
 * answered (false → the caller's 404 or next handler).
 * @throws ConfigError when a part lacks what it needs, or an option is invalid.
 */
export function createOpsHandler(options: OpsHandlerOptions): HttpHandler {
  const { server, store, transport, registry } = options;
  const metrics = options.metrics ?? (registry ? promMetrics({ registry }) : undefined);
  const webSocketPath = options.webSocketPath ?? '/matssocket';
  const handlers: HttpHandler[] = [];
  if (registry) handlers.push(createMetricsHandler({ registry, path: options.metricsPath }));
  if (options.health !== false && store && transport) {
    handlers.push(createHealthHandler({ ...options.health, server, store, transport }));
  } else if (options.health !== undefined && options.health !== false) {
    throw new ConfigError('health', 'readiness needs the store and the transport');
  }
  if (options.serverApiKey !== undefined) {
    try {
      handlers.push(
        createServerApiHandler({
          ...options.serverApi,
          server,
          apiKey: options.serverApiKey,
          metrics,
          logger: options.logger,
        }),
      );
    } catch (err) {
      // Name the field as the caller spelt it.
      if (!(err instanceof ConfigError)) throw err;
      const field = err.field === 'apiKey' ? 'serverApiKey' : `serverApi.${err.field}`;
      throw new ConfigError(field, err.message.replace(/^Invalid configuration '[^']*': /, ''));
    }
  }
  if (options.adminToken !== undefined) {
    if (!store) throw new ConfigError('store', 'the admin API needs the store');
    const refused = metrics?.counter({
      name: 'matssocket_admin_requests_refused_total',
      help: 'Admin API requests refused: reason host (Host header not allowed), unauthenticated, bad_token',
      labelNames: ['reason'],
    });
    let access;
    try {
      access = createAdminAccess({
        token: options.adminToken,
        allowedHosts: options.allowedHosts ?? [],
        onRefused: refused ? (reason) => refused.inc({ reason }) : undefined,
      });
    } catch (err) {
      throw new ConfigError('adminToken', err instanceof Error ? err.message : String(err));
    }
    handlers.push(createAdminApiHandler({ server, store, access }));
  }
  if (options.closeSession !== false) {
    handlers.push(
      createCloseSessionHandler({
        server,
        path: webSocketPath,
        cors: options.cors,
        reason: options.closeSession?.reason,
      }),
    );
  }
  if (options.preconnect !== undefined) {
    const preconnect = options.preconnect === true ? {} : options.preconnect;
    handlers.push(createPreconnectHandler({ ...preconnect, path: webSocketPath, cors: options.cors }));
  }
  return chainHttpHandlers(handlers);
}
