import type { Logger } from '../../logging.ts';
import type { MatsSocketServerOptions } from '../../server/MatsSocketServerOptions.ts';
import type { CompatServerConfig } from '../nodeConfig.ts';
import { NodeAssembly } from '../NodeAssembly.ts';
import { registerCompatBackendEndpoints } from './compatBackendEndpoints.ts';
import { createCompatHttpHandler } from './compatHttp.ts';
import { registerCompatMatsSocketEndpoints } from './compatMatsSocketEndpoints.ts';
import { DummyAuth } from './DummyAuth.ts';

/** Application name and MatsSocket instance name of the compatibility server (docs/compat-test-server.md 2). */
export const COMPAT_APP_NAME = 'MatsSocketCompatServer';

/** The readiness line's prefix (docs/compat-test-server.md 1.2). */
export const COMPAT_READY_PREFIX = 'MATSSOCKET_COMPAT_READY MATS_SOCKET_URLS=';

/** The node name of the node on `port`. */
export function compatNodeName(port: number): string {
  return `compat-${port}`;
}

/** Options of {@link startCompatServer} beyond the configuration. */
export interface StartCompatServerOptions {
  logger: Logger;
  /** `GET /shutdown` on any node. */
  onShutdown: () => void;
  /** Server option overrides (tests shorten timings). */
  server?: Partial<Pick<MatsSocketServerOptions, 'timings' | 'jobs' | 'limits'>>;
  /** Grace period of the graceful stop, in ms. @default 5000 */
  stopGraceMs?: number;
}

/**
 * Starts the compatibility test server's nodes (docs/compat-test-server.md): one per configured port, all with DummyAuth,
 * the `Test.*` MatsSocket endpoints, the backend endpoints and the HTTP side channels, on one broker and one store.
 */
export function startCompatServer(
  config: CompatServerConfig,
  options: StartCompatServerOptions,
): Promise<NodeAssembly> {
  return NodeAssembly.start({
    appName: COMPAT_APP_NAME,
    instanceName: COMPAT_APP_NAME,
    host: config.host,
    nodes: config.ports.map((port) => ({ nodeName: compatNodeName(port), port })),
    amqpUrl: config.amqpUrl,
    db: config.db,
    queuePrefix: config.queuePrefix,
    ...(config.concurrency !== undefined ? { concurrency: config.concurrency } : {}),
    authenticationPlugin: DummyAuth.factory(),
    logger: options.logger,
    ...(options.server ? { server: options.server } : {}),
    ...(options.stopGraceMs !== undefined ? { stopGraceMs: options.stopGraceMs } : {}),
    setup: (node) => {
      registerCompatMatsSocketEndpoints(node.server);
      registerCompatBackendEndpoints(node.server, node.factory);
    },
    http: createCompatHttpHandler({ onShutdown: options.onShutdown }),
  });
}

/** The readiness line for the started nodes. */
export function compatReadyLine(assembly: NodeAssembly): string {
  return `${COMPAT_READY_PREFIX}${assembly.nodes.map((n) => n.webSocketUrl).join(',')}`;
}
