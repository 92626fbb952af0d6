import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { Logger } from '../../logging.ts';
import { promMetrics } from '../../metrics/promMetrics.ts';
import { MetricsHistory } from '../../ops/MetricsHistory.ts';
import type { MatsSocketServerOptions } from '../../server/MatsSocketServerOptions.ts';
import { DummyAuth } from '../compat/DummyAuth.ts';
import type { MainNodeConfig } from '../nodeConfig.ts';
import { NodeAssembly, type AssembledNode } from '../NodeAssembly.ts';
import { ensureBrowserBundle } from './browserBundle.ts';
import { DemoTicker, registerDemoEndpoints } from './demoEndpoints.ts';
import { createDemoHttpHandler } from './demoHttp.ts';
import { packageRoot } from './packageRoot.ts';

/** Application name and MatsSocket instance name of the `npm start` node. */
export const DEMO_APP_NAME = 'MatsSocketDemo';

/** The URLs a started demo node serves. */
export interface DemoNodeUrls {
  demo: string;
  /** The admin page; with a generated token it carries it as `#token=<token>` (the page stores and sends it). */
  admin: string;
  webSocket: string;
  metrics: string;
  health: string;
}

/** A started demo node. */
export interface DemoNode {
  readonly node: AssembledNode;
  readonly urls: DemoNodeUrls;
  readonly registry: Registry;
  /** The admin API's bearer token: `MATSSOCKET_ADMIN_TOKEN`, or generated at start. */
  readonly adminToken: string;
  /** The node's sampled metrics the admin page charts. */
  readonly metricsHistory: MetricsHistory;
  /** Graceful stop (ticker, metrics sampler, then the node). Idempotent. */
  stop(): Promise<void>;
}

/** Options of {@link startDemoNode} beyond the configuration. */
export interface StartDemoNodeOptions {
  logger: Logger;
  /** Server option overrides (tests shorten timings). */
  server?: Partial<Pick<MatsSocketServerOptions, 'timings' | 'jobs' | 'limits'>>;
  /** @default 5000 */
  stopGraceMs?: number;
}

/**
 * Starts the `npm start` node: one MatsSocket node (DummyAuth; dead-letters NACKed messages so the admin page has
 * something to show) with the demo endpoints, the demo and admin pages, `/metrics` and `/health`.
 */
export async function startDemoNode(
  config: MainNodeConfig,
  options: StartDemoNodeOptions,
): Promise<DemoNode> {
  const { logger } = options;
  const adminToken = config.adminToken ?? randomBytes(32).toString('base64url');
  if (config.adminToken === undefined && !isLoopback(config.host)) {
    logger.warn(
      { host: config.host },
      `HOST=${config.host} serves other machines, and the admin API's token was generated and printed at start: ` +
        'anyone who sees this log can administer the node. Set MATSSOCKET_ADMIN_TOKEN (and MATSSOCKET_ADMIN_HOSTS ' +
        'for the names the admin page is reached by).',
    );
  }
  const root = packageRoot();
  const bundleDir = await ensureBrowserBundle(root, logger);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const tickers: DemoTicker[] = [];
  const metricsHistory = new MetricsHistory({ source: registry, nodeName: config.nodeName, logger });
  const assembly = await NodeAssembly.start({
    appName: DEMO_APP_NAME,
    instanceName: DEMO_APP_NAME,
    host: config.host,
    nodes: [{ nodeName: config.nodeName, port: config.port }],
    amqpUrl: config.amqpUrl,
    db: config.db,
    queuePrefix: config.queuePrefix,
    ...(config.concurrency !== undefined ? { concurrency: config.concurrency } : {}),
    authenticationPlugin: DummyAuth.factory(),
    logger,
    metrics: promMetrics({ registry }),
    server: { ...options.server, deadLetterOnNack: true },
    ...(options.stopGraceMs !== undefined ? { stopGraceMs: options.stopGraceMs } : {}),
    setup: (node) => {
      registerDemoEndpoints(node.server, node.factory);
      tickers.push(new DemoTicker(node.server, config.tickerIntervalMs, logger));
    },
    http: createDemoHttpHandler({
      publicDir: join(root, 'src', 'cli', 'demo', 'public'),
      bundleDir,
      registry,
      adminToken,
      adminAllowedHosts: [...config.adminAllowedHosts, ...hostNamesOfBindAddress(config.host)],
      metricsHistory,
    }),
  });
  for (const t of tickers) t.start();
  metricsHistory.start();
  const node = assembly.nodes[0]!;
  const base = node.httpUrl.replace('://0.0.0.0:', '://127.0.0.1:').replace('://[::]:', '://[::1]:');
  let stopped: Promise<void> | undefined;
  return {
    node,
    registry,
    adminToken,
    metricsHistory,
    urls: {
      demo: `${base}/`,
      // A configured token is the operator's secret and stays out of the logs; a generated one must be shown.
      admin: `${base}/admin${config.adminToken === undefined ? `#token=${adminToken}` : ''}`,
      webSocket: `${base.replace(/^http/, 'ws')}/matssocket`,
      metrics: `${base}/metrics`,
      health: `${base}/health`,
    },
    stop() {
      stopped ??= (async () => {
        for (const t of tickers) t.stop();
        await metricsHistory.stop();
        await assembly.stop();
      })();
      return stopped;
    },
  };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\./.test(host);
}

/** The bind address as a `Host` header names it; none for the wildcard addresses (no client sends those). */
function hostNamesOfBindAddress(host: string): string[] {
  if (host === '0.0.0.0' || host === '::' || host === '[::]') return [];
  return [host.includes(':') && !host.startsWith('[') ? `[${host}]` : host.toLowerCase()];
}
