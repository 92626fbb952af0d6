import { mkdirSync } from 'node:fs';
import {
  createServer,
  type IncomingMessage,
  type Server as HttpServer,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname } from 'node:path';
import type { Knex } from 'knex';
import { AmqpTransport } from '../broker/AmqpTransport.ts';
import { InMemoryBroker } from '../broker/InMemoryBroker.ts';
import { InMemoryTransport } from '../broker/InMemoryTransport.ts';
import type { Transport } from '../broker/Transport.ts';
import { ConfigError, MatsSocketError } from '../errors.ts';
import type { Logger } from '../logging.ts';
import { MatsFactory } from '../mats/MatsFactory.ts';
import type { Metrics } from '../metrics/Metrics.ts';
import type { AuthenticationPluginFactory } from '../server/auth/AuthenticationPlugin.ts';
import { MatsSocketServer } from '../server/MatsSocketServer.ts';
import type { MatsSocketServerOptions } from '../server/MatsSocketServerOptions.ts';
import { createDatabase, redactUrl, type DatabaseUrl } from '../store/database.ts';
import { migrateLatest } from '../store/migrate.ts';
import { SqlClusterStore } from '../store/SqlClusterStore.ts';

/** One node of an assembly: where it listens and what it is called. */
export interface NodeSpec {
  /** Unique among running nodes (sessions are registered under it). */
  nodeName: string;
  /** Listen port; 0 picks a free one. */
  port: number;
}

/** A started node: its server, its Mats factory, store, transport and HTTP server. */
export interface AssembledNode {
  readonly nodeName: string;
  readonly server: MatsSocketServer;
  readonly factory: MatsFactory;
  readonly store: SqlClusterStore;
  readonly transport: Transport;
  readonly knex: Knex;
  readonly httpServer: HttpServer;
  /** The bound port (known after listening). */
  readonly port: number;
  /** `ws://host:port/matssocket`. */
  readonly webSocketUrl: string;
  /** `http://host:port`. */
  readonly httpUrl: string;
}

/** Handles the node's plain HTTP requests (everything but the WebSocket upgrade); false → 404. */
export type NodeHttpHandler = (
  node: AssembledNode,
  request: IncomingMessage,
  response: ServerResponse,
) => boolean | Promise<boolean>;

/** Options of {@link NodeAssembly.start}. */
export interface NodeAssemblyOptions {
  /** Application name of the Mats factories (shown in messages, logs and metrics). */
  appName: string;
  /** @default '1.0.0' */
  appVersion?: string;
  /** MatsSocket instance name, shared by the nodes. */
  instanceName: string;
  /** Bind address of every node. */
  host: string;
  nodes: readonly NodeSpec[];
  /** RabbitMQ URL; undefined: one embedded in-memory broker shared by the nodes. */
  amqpUrl: string | undefined;
  /**
   * The database. SQLite: ONE knex (one connection) shared by every node's store and factory, so that they all see
   * the same database (also `:memory:`); a file's folder is created if missing. Others: one pool per node.
   */
  db: DatabaseUrl;
  /** Queue prefix of the Mats layer; the pub/sub exchange is `<prefix>pubsub`. @default 'mats.' */
  queuePrefix?: string;
  /** Concurrency of every backend stage. @default the Mats layer's default */
  concurrency?: number;
  /** WebSocket path. @default '/matssocket' */
  path?: string;
  authenticationPlugin: AuthenticationPluginFactory;
  logger: Logger;
  /** @default noopMetrics */
  metrics?: Metrics;
  /** More server options (timings, jobs, limits) for every node. */
  server?: Partial<
    Omit<
      MatsSocketServerOptions,
      'nodeName' | 'instanceName' | 'matsFactory' | 'store' | 'authenticationPlugin'
    >
  >;
  /** Grace period of the graceful stop, in ms. @default 5000 */
  stopGraceMs?: number;
  /** Pool size per node for MySQL/MariaDB and PostgreSQL. @default 10 */
  poolMax?: number;
  /** Registers the MatsSocket and backend endpoints on a node, before it starts. */
  setup: (node: Omit<AssembledNode, 'port' | 'webSocketUrl' | 'httpUrl'>) => void;
  /** The nodes' plain HTTP requests. @default everything 404 */
  http?: NodeHttpHandler;
}

/** The process cannot listen on a configured port; `port` and `host` say where. */
export class ListenError extends ConfigError {
  readonly port: number;
  readonly host: string;
  /** `<host>:<port> is already in use` (or why else it cannot be bound). */
  readonly detail: string;

  constructor(host: string, port: number, cause: NodeJS.ErrnoException) {
    const why =
      cause.code === 'EADDRINUSE' ? 'is already in use' : `cannot be bound (${cause.code ?? cause.message})`;
    const detail = `${host}:${port} ${why}`;
    super('port', detail);
    this.port = port;
    this.host = host;
    this.detail = detail;
    this.cause = cause;
  }
}

interface NodeParts {
  nodeName: string;
  port: number;
  knex: Knex;
  store: SqlClusterStore;
  transport: Transport;
  factory: MatsFactory;
  server: MatsSocketServer;
  httpServer: HttpServer;
  node?: AssembledNode;
}

/**
 * One or more complete MatsSocket nodes in this process on one broker and one database (docs/compat-test-server.md
 * 1.1): each node has its own HTTP/WebSocket listener, transport (broker connections), store client, Mats factory
 * and jobs. {@link start} creates, migrates, starts and listens; {@link stop} is the graceful stop (1012 to
 * clients, drain, close broker and store), idempotent.
 */
export class NodeAssembly {
  readonly nodes: readonly AssembledNode[];
  readonly #parts: NodeParts[];
  readonly #knexes: Knex[];
  readonly #logger: Logger;
  readonly #graceMs: number;
  #stopped: Promise<void> | undefined;

  private constructor(parts: NodeParts[], knexes: Knex[], logger: Logger, graceMs: number) {
    this.#parts = parts;
    this.nodes = parts.flatMap((p) => (p.node ? [p.node] : []));
    this.#knexes = knexes;
    this.#logger = logger;
    this.#graceMs = graceMs;
  }

  /**
   * Binds every node's port, then creates, migrates and starts every node, then serves. On any failure everything
   * created so far is closed again and the error is rethrown: a busy port as {@link ListenError} (before the store
   * is touched), a node name that is alive in the store as `NodeNameInUseError` (before any session write).
   */
  static async start(options: NodeAssemblyOptions): Promise<NodeAssembly> {
    const log = options.logger;
    const path = options.path ?? '/matssocket';
    const graceMs = options.stopGraceMs ?? 5000;
    const knexes: Knex[] = [];
    const parts: NodeParts[] = [];
    let broker: InMemoryBroker | undefined;
    const assembly = (): NodeAssembly => new NodeAssembly(parts, knexes, log, graceMs);
    // Ports first: a node that cannot serve must not touch the store (booting deregisters its name's sessions).
    const bound: BoundHttp[] = [];
    try {
      for (const spec of options.nodes) bound.push(await bind(spec.port, options));
      const db = options.db;
      if (db.dialect === 'sqlite' && db.target !== ':memory:')
        mkdirSync(dirname(db.target), { recursive: true });
      const newKnex = (): Knex => {
        const k = createDatabase(db, {
          logger: log,
          ...(options.poolMax !== undefined ? { poolMax: options.poolMax } : {}),
        });
        knexes.push(k);
        return k;
      };
      const shared = newKnex();
      for (const r of await migrateLatest(shared)) {
        if (r.applied.length > 0) log.info({ set: r.name, applied: r.applied }, 'applied migrations');
      }
      const prefix = options.queuePrefix ?? 'mats.';
      const exchange = `${prefix}pubsub`;
      for (const [i, spec] of options.nodes.entries()) {
        const knex = db.dialect === 'sqlite' || parts.length === 0 ? shared : newKnex();
        // Store, factory and server add the node name to their log lines themselves; the transport does not.
        const nodeLog = log.child({ node: spec.nodeName });
        const store = new SqlClusterStore(knex, { nodeName: spec.nodeName, migrate: false, logger: log });
        const amqpUrl = options.amqpUrl;
        const transport: Transport =
          amqpUrl === undefined
            ? new InMemoryTransport((broker ??= new InMemoryBroker()), {
                name: spec.nodeName,
                exchange,
                logger: nodeLog,
              })
            : new AmqpTransport({ url: amqpUrl, name: spec.nodeName, exchange, logger: nodeLog });
        const factory = new MatsFactory({
          appName: options.appName,
          appVersion: options.appVersion ?? '1.0.0',
          nodeName: spec.nodeName,
          transport,
          db: knex,
          queuePrefix: prefix,
          logger: log,
          ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
          ...(options.metrics ? { metrics: options.metrics } : {}),
        });
        const server = new MatsSocketServer({
          ...options.server,
          nodeName: spec.nodeName,
          instanceName: options.instanceName,
          matsFactory: factory,
          store,
          authenticationPlugin: options.authenticationPlugin,
          logger: log,
          ...(options.metrics ? { metrics: options.metrics } : {}),
          timings: { stopGraceMs: graceMs, ...options.server?.timings },
        });
        const part: NodeParts = {
          nodeName: spec.nodeName,
          port: spec.port,
          knex,
          store,
          transport,
          factory,
          server,
          httpServer: bound[i]!.server,
        };
        parts.push(part);
        options.setup(part);
      }
      // Each store refuses a node name that is alive elsewhere (NodeNameInUseError) before any session write.
      await Promise.all(parts.map((p) => p.server.start()));
      for (const [i, p] of parts.entries()) {
        p.node = serve(p, bound[i]!, options, path);
        log.info({ node: p.nodeName, url: p.node.webSocketUrl }, 'MatsSocket node listening');
      }
      return assembly();
    } catch (err) {
      await assembly()
        .stop(0)
        .catch((e: unknown) => log.warn({ err: e }, 'cleanup after a failed start failed'));
      await Promise.all(bound.map((b) => closeHttpServer(b.server)));
      throw err instanceof MatsSocketError || !(err instanceof Error)
        ? err
        : Object.assign(err, { message: redactUrl(err.message) });
    }
  }

  /**
   * Graceful stop of every node at once (docs/protocol.md 8.17): new connections get 1012, in-flight work may finish
   * within the grace period, sessions are deregistered and closed with 1012; then the Mats factories stop, the HTTP
   * servers close, and the transports and databases are closed. Every step runs even if another fails. Idempotent.
   */
  stop(graceMs: number = this.#graceMs): Promise<void> {
    this.#stopped ??= (async () => {
      const log = this.#logger;
      const step = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
        try {
          await fn();
        } catch (err) {
          log.warn({ err }, `stop: ${what} failed`);
        }
      };
      await Promise.all(
        this.#parts.map(async (p) => {
          await step(`server ${p.nodeName}`, () => p.server.stop(graceMs));
          await step(`Mats factory ${p.nodeName}`, () => p.factory.stop(graceMs));
          await step(`HTTP server ${p.nodeName}`, () => closeHttpServer(p.httpServer));
          await step(`store ${p.nodeName}`, () => p.store.close());
          await step(`transport ${p.nodeName}`, () => p.transport.close());
        }),
      );
      await Promise.all(this.#knexes.map((k) => step('database', () => k.destroy())));
      log.info({ nodes: this.#parts.map((p) => p.nodeName) }, 'all nodes stopped');
    })();
    return this.#stopped;
  }
}

/** An HTTP server bound to its port, answering 503 until its node is complete. */
interface BoundHttp {
  readonly server: HttpServer;
  readonly ready: { node?: AssembledNode };
}

async function bind(port: number, options: NodeAssemblyOptions): Promise<BoundHttp> {
  const { host } = options;
  const http = createServer();
  const ready: { node?: AssembledNode } = {};
  http.on('request', (req, res) => {
    const n = ready.node;
    if (!n) {
      res.writeHead(503).end();
      return;
    }
    void (async () => {
      try {
        if (!(options.http && (await options.http(n, req, res)))) {
          if (!res.headersSent) res.writeHead(404, { 'content-type': 'text/plain' }).end('Not Found');
        }
      } catch (err) {
        options.logger.warn({ err, url: req.url }, 'HTTP handler failed');
        if (!res.headersSent)
          res.writeHead(500, { 'content-type': 'text/plain' }).end('Internal Server Error');
        else res.destroy();
      }
    })();
  });
  // Until the node is served there is no 'upgrade' listener: Node closes WebSocket upgrades, and clients retry.
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => reject(new ListenError(host, port, err));
    http.once('error', onError);
    http.listen(port, host, () => {
      http.off('error', onError);
      resolve();
    });
  });
  return { server: http, ready };
}

function serve(p: NodeParts, bound: BoundHttp, options: NodeAssemblyOptions, path: string): AssembledNode {
  const http = bound.server;
  p.server.attach(http, path);
  const port = (http.address() as AddressInfo).port;
  const urlHost = options.host.includes(':') ? `[${options.host}]` : options.host;
  const node: AssembledNode = {
    nodeName: p.nodeName,
    server: p.server,
    factory: p.factory,
    store: p.store,
    transport: p.transport,
    knex: p.knex,
    httpServer: http,
    port,
    webSocketUrl: `ws://${urlHost}:${port}${path}`,
    httpUrl: `http://${urlHost}:${port}`,
  };
  bound.ready.node = node;
  return node;
}

function closeHttpServer(server: HttpServer): Promise<void> {
  if (!server.listening) return Promise.resolve();
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
