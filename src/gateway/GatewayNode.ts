import { Registry } from 'prom-client';
import { NodeAssembly, type AssembledNode } from '../cli/NodeAssembly.ts';
import type { Logger } from '../logging.ts';
import { promMetrics } from '../metrics/promMetrics.ts';
import { MetricsHistory } from '../ops/MetricsHistory.ts';
import type { MatsSocketServerOptions } from '../server/MatsSocketServerOptions.ts';
import type { GatewayConfig } from './GatewayConfig.ts';
import { createGatewayAuthentication, createGatewayHttpHandler } from './gatewayParts.ts';
import { registerGatewayRouting } from './registerGatewayRouting.ts';
import { TopicAuthorizer } from './TopicAuthorizer.ts';

/** Options of {@link GatewayNode.start} beyond the configuration. */
export interface GatewayNodeOptions {
  logger: Logger;
  /**
   * Server options laid over the configuration's `limits`, `timings` and `jobs` (tests shorten timings).
   * @default none
   */
  server?: Partial<Pick<MatsSocketServerOptions, 'limits' | 'timings' | 'jobs'>>;
}

/**
 * One MatsSocket gateway node built from a {@link GatewayConfig} alone (docs/gateway.md): a MatsSocket server with
 * the configured endpoints, terminators, topic rules and authentication, its Mats factory on the configured broker
 * and its store on the configured database (migrated at start), listening on the configured address. Backends in
 * any language serve the Mats endpoints the configuration names (docs/mats-wire-format.md).
 */
export class GatewayNode {
  readonly config: GatewayConfig;
  /** The started node: server, factory, store, transport, bound port and URLs. */
  readonly node: AssembledNode;
  /** The node's Prometheus registry. */
  readonly registry: Registry;
  readonly #assembly: NodeAssembly;
  readonly #metricsHistory: MetricsHistory;
  #stopped: Promise<void> | undefined;

  private constructor(
    config: GatewayConfig,
    assembly: NodeAssembly,
    registry: Registry,
    metricsHistory: MetricsHistory,
  ) {
    this.config = config;
    this.#assembly = assembly;
    this.node = assembly.nodes[0]!;
    this.registry = registry;
    this.#metricsHistory = metricsHistory;
  }

  /** `ws://host:port/path` of the bound port. */
  get webSocketUrl(): string {
    return this.node.webSocketUrl;
  }

  /**
   * Binds the port, then creates and migrates the store, connects the broker, registers the routing and starts
   * serving. On failure everything started so far is closed again and the error is rethrown (`ListenError` for a
   * busy port, `NodeNameInUseError` for a node name that is running, `ConfigError` for a part that cannot be
   * built).
   */
  static async start(config: GatewayConfig, options: GatewayNodeOptions): Promise<GatewayNode> {
    const { logger } = options;
    const topics = new TopicAuthorizer(config.topics);
    const authenticationPlugin = createGatewayAuthentication(config.auth, config.listen.host, topics, logger);
    const registry = new Registry();
    const metrics = promMetrics({ registry });
    const metricsHistory = new MetricsHistory({ source: registry, nodeName: config.nodeName, logger });
    const http = createGatewayHttpHandler({ config, registry, metrics, metricsHistory, logger });
    const overrides = options.server ?? {};
    const assembly = await NodeAssembly.start({
      appName: config.instanceName,
      instanceName: config.instanceName,
      host: config.listen.host,
      path: config.listen.path,
      nodes: [{ nodeName: config.nodeName, port: config.listen.port }],
      amqpUrl: config.broker.url.toLowerCase() === 'memory' ? undefined : config.broker.url,
      db: config.database.parsed,
      poolMax: config.database.poolMax,
      queuePrefix: config.broker.queuePrefix,
      ...(config.broker.concurrency !== undefined ? { concurrency: config.broker.concurrency } : {}),
      authenticationPlugin,
      logger,
      metrics,
      stopGraceMs: config.stopGraceMs,
      server: {
        limits: { ...config.limits, ...overrides.limits },
        timings: { ...config.timings, ...overrides.timings },
        jobs: { ...config.jobs, ...overrides.jobs },
        ...(config.allowedOrigins !== undefined ? { allowedOrigins: config.allowedOrigins } : {}),
        ...(config.topicReplayRetentionMs !== undefined
          ? { topicReplayRetentionMs: config.topicReplayRetentionMs }
          : {}),
        ...(config.nodeReplyQueues !== undefined ? { nodeReplyQueues: config.nodeReplyQueues } : {}),
      },
      setup: (node) => registerGatewayRouting(node, config),
      http,
    });
    logger.info(
      {
        node: config.nodeName,
        url: assembly.nodes[0]!.webSocketUrl,
        endpoints: config.endpoints.map((e) => `${e.id} -> ${e.to}`),
        terminators: config.terminators.map((t) => `${t.from} -> ${t.id}`),
        topicRules: config.topics.length,
      },
      'MatsSocket gateway node started',
    );
    metricsHistory.start();
    return new GatewayNode(config, assembly, registry, metricsHistory);
  }

  /**
   * Graceful stop: clients get 1012 and reconnect elsewhere (or to this node when it is back), in-flight work may
   * finish within `graceMs`, then the broker and database connections close. Idempotent.
   * @param graceMs @default the configuration's `stopGraceMs`
   */
  stop(graceMs: number = this.config.stopGraceMs): Promise<void> {
    return (this.#stopped ??= (async () => {
      await this.#metricsHistory.stop();
      await this.#assembly.stop(graceMs);
    })());
  }
}
