import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError, ErrorCode, MatsSocketServerError } from '../errors.ts';
import type { MatsEndpoint } from '../mats/MatsEndpoint.ts';
import type {
  DeadLetter,
  DeadLetterFilter,
  DeadLetterPurge,
  DeadLetterSummary,
  NodeInfo,
  RequeueResult,
  SessionFilter,
  SessionInfo,
} from '../store/storeTypes.ts';
import { registerBuiltInEndpoints } from './BuiltInEndpoints.ts';
import { WebSocketGateway } from './connection/WebSocketGateway.ts';
import type { JobName } from './jobs/ServerJobs.ts';
import type {
  IncomingHandler,
  MatsSocketEndpointDefinition,
  ReplyAdapter,
} from './messaging/EndpointTypes.ts';
import type { ServerRequestOptions } from './outbound/ServerMessaging.ts';
import { resolveServerOptions, type MatsSocketServerOptions } from './MatsSocketServerOptions.ts';
import { activeSessionInfo, type ActiveSessionInfo } from './introspection/ActiveSessionInfo.ts';
import { endpointInfos, type EndpointInfo } from './introspection/EndpointInfo.ts';
import { implementationInfo, type ImplementationInfo } from './introspection/implementationInfo.ts';
import type { ServerEventMap } from './ServerEvents.ts';
import { ServerRuntime } from './ServerRuntime.ts';

/** Where `listen()` serves. */
export interface ListenOptions {
  /** @default '127.0.0.1' */
  host?: string;
  /** 0 picks a free port. @default 0 */
  port?: number;
  /** @default '/matssocket' */
  path?: string;
}

const STOP_REASON = 'From Server: Server instance is going down, please reconnect.';

/**
 * One MatsSocket server node: the wire-compatible WebSocket gateway (docs/protocol.md), clustered with the other nodes
 * through the shared store and the Mats broker layer. Register endpoints, `start()` (or `listen()`), and `stop()`.
 * The Mats factory, its transport and the store belong to the caller, who closes them after `stop()`.
 */
export class MatsSocketServer {
  readonly #rt: ServerRuntime;
  readonly #gateway: WebSocketGateway;
  readonly #matsEndpoints: MatsEndpoint[] = [];
  readonly #ownHttpServers: HttpServer[] = [];
  #started: Promise<void> | undefined;
  #stopped: Promise<void> | undefined;

  /** @throws ConfigError naming an invalid option. */
  constructor(options: MatsSocketServerOptions) {
    this.#rt = new ServerRuntime(resolveServerOptions(options));
    this.#gateway = new WebSocketGateway(this.#rt);
    if (this.#rt.options.builtInEndpoints) registerBuiltInEndpoints(this, this.#rt.options);
  }

  get nodeName(): string {
    return this.#rt.options.nodeName;
  }

  get instanceName(): string {
    return this.#rt.options.instanceName;
  }

  // ---- Endpoints -------------------------------------------------------------------------------------------

  /** An endpoint whose incoming handler forwards to the backend; REQUEST replies pass the optional reply adapter. */
  endpoint<I = unknown, R = unknown>(
    endpointId: string,
    handlers: { incoming: IncomingHandler<I, R>; replyAdapter?: ReplyAdapter<R> },
  ): void {
    this.#define({
      endpointId,
      kind: 'endpoint',
      incoming: handlers.incoming as IncomingHandler,
      replyAdapter: handlers.replyAdapter,
      immediateReplies: false,
    });
  }

  /** An endpoint whose incoming handler settles requests itself (resolve/reject/deny/ignore). */
  directEndpoint<I = unknown, R = unknown>(endpointId: string, incoming: IncomingHandler<I, R>): void {
    this.#define({
      endpointId,
      kind: 'direct',
      incoming: incoming as IncomingHandler,
      replyAdapter: undefined,
      immediateReplies: false,
    });
  }

  /** An endpoint that never replies: a client REQUEST to it is NACKed. Also the reply target of `request(...)`. */
  terminator<I = unknown>(endpointId: string, incoming: IncomingHandler<I, never>): void {
    this.#define({
      endpointId,
      kind: 'terminator',
      incoming: incoming as IncomingHandler,
      replyAdapter: undefined,
      immediateReplies: false,
    });
  }

  /** @internal */
  defineEndpoint(definition: MatsSocketEndpointDefinition): void {
    this.#define(definition);
  }

  #define(definition: MatsSocketEndpointDefinition): void {
    if (typeof definition.endpointId !== 'string' || definition.endpointId.length === 0) {
      throw new MatsSocketServerError(
        ErrorCode.SERVER_ILLEGAL_CALL,
        'An endpoint id must be a non-empty string',
      );
    }
    if (typeof definition.incoming !== 'function') {
      throw new MatsSocketServerError(
        ErrorCode.SERVER_ILLEGAL_CALL,
        `Endpoint '${definition.endpointId}' needs an incoming handler`,
      );
    }
    if (this.#rt.endpoints.has(definition.endpointId)) {
      throw new MatsSocketServerError(
        ErrorCode.SERVER_ILLEGAL_CALL,
        `Endpoint '${definition.endpointId}' is already registered`,
      );
    }
    this.#rt.endpoints.set(definition.endpointId, definition);
  }

  // ---- Lifecycle -------------------------------------------------------------------------------------------

  /**
   * Boots the store (deregistering stale rows of this node), registers the internal Mats endpoints (reply handler,
   * node control, publish, matsPing), waits until they consume, and starts the jobs. Idempotent.
   */
  start(): Promise<void> {
    this.#started ??= (async () => {
      const rt = this.#rt;
      const factory = rt.options.matsFactory;
      await rt.store.boot();
      if (factory.options.db && !(await rt.store.isSameDatabase(factory.options.db))) {
        throw new ConfigError(
          'matsFactory',
          "the Mats factory's db is not the store's database: give both the same database (replies and " +
            "server-initiated messages are committed with the store's rows, and must be atomic with them)",
        );
      }
      // This node's reply queue: replies to its forwards come back to it (docs/protocol.md 8.6).
      const replyQueues = rt.options.nodeReplyQueues;
      const own = replyQueues > 0 ? await rt.store.claimReplyQueue(replyQueues) : undefined;
      this.#matsEndpoints.push(
        ...rt.replyHandler.register(own),
        rt.nodeControl.register(),
        rt.topics.register(),
      );
      if (own !== undefined) rt.forwards.replyTo(rt.replyHandler.nodeQueueId(own));
      if (rt.options.builtInEndpoints) {
        this.#matsEndpoints.push(
          factory.single<{ payload?: string; number: number }, { payload?: string; number?: number }>(
            `MatsSocket.${rt.options.instanceName}.matsPing`,
            (_ctx, ping) => ({
              ...(ping?.payload !== undefined ? { payload: ping.payload } : {}),
              number: (ping?.number ?? 0) * Math.PI,
            }),
          ),
        );
      }
      await factory.start();
      const ok = await Promise.all(this.#matsEndpoints.map((e) => e.waitForReceiving(30_000)));
      if (!ok.every(Boolean))
        throw new MatsSocketServerError(
          ErrorCode.SERVER_STOPPED,
          'MatsSocket endpoints did not start consuming',
        );
      if (rt.options.jobs.enabled) rt.jobs.start();
      rt.logger.info(
        { endpoints: this.#matsEndpoints.length, replyQueue: own ?? null },
        'MatsSocket server started',
      );
    })();
    return this.#started;
  }

  /**
   * Serves the WebSocket on `path` of an HTTP server the caller owns (its other paths keep working). Call
   * {@link start} as well (before clients connect): it registers the internal endpoints.
   */
  attach(server: HttpServer, path = '/matssocket'): void {
    this.#gateway.attach(server, path);
  }

  /**
   * Binds a new HTTP server, then starts, then serves the WebSocket on it. The port comes first: a node that cannot
   * serve must not boot the store (boot deregisters the sessions of its node name). @returns the `ws://` URL and
   * the bound port.
   */
  async listen(options: ListenOptions = {}): Promise<{ url: string; port: number; httpServer: HttpServer }> {
    const host = options.host ?? '127.0.0.1';
    const path = options.path ?? '/matssocket';
    const server = createServer((_req, res) => {
      res.statusCode = 404;
      res.end();
    });
    this.#ownHttpServers.push(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    try {
      await this.start();
    } catch (err) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      throw err;
    }
    this.attach(server, path);
    const port = (server.address() as AddressInfo).port;
    return { url: `ws://${host}:${port}${path}`, port, httpServer: server };
  }

  /**
   * Graceful stop (docs/protocol.md 8.17): new connections get 1012; in-flight handling and forward rounds may finish
   * within `graceMs`; then every local session is deregistered and closed with 1012; jobs and the internal Mats
   * endpoints stop. Idempotent.
   */
  stop(graceMs: number = this.#rt.options.timings.stopGraceMs): Promise<void> {
    this.#stopped ??= (async () => {
      const rt = this.#rt;
      rt.markStopping();
      await rt.drain(Date.now() + graceMs);
      const connections = [...this.#gateway.connections];
      for (const conn of connections) conn.close(1012, STOP_REASON);
      await Promise.allSettled(connections.map((c) => c.ended ?? Promise.resolve()));
      await rt.jobs.stop();
      await Promise.allSettled(this.#matsEndpoints.map((e) => e.remove(graceMs)));
      rt.nodeControl.detach();
      rt.topics.detach();
      await rt.nodeControl.flush();
      await rt.drain(Date.now() + graceMs);
      await this.#gateway.close();
      await Promise.all(
        this.#ownHttpServers.map(
          (s) =>
            new Promise<void>((resolve) => {
              s.close(() => resolve());
              s.closeAllConnections();
            }),
        ),
      );
      rt.markStopped();
      rt.logger.info({}, 'MatsSocket server stopped');
    })();
    return this.#stopped;
  }

  // ---- Server-initiated messages ---------------------------------------------------------------------------

  /** Sends to a client terminator (8.10). @returns false if the session does not exist (dropped). */
  send(sessionId: string, traceId: string, clientTerminatorId: string, message: unknown): Promise<boolean> {
    return this.#rt.messaging.send(sessionId, traceId, clientTerminatorId, message);
  }

  /** Requests a client endpoint (8.11); the answer (or NACK/TIMEOUT, BR-4) goes to `replyToTerminatorId`. */
  request(
    sessionId: string,
    traceId: string,
    clientEndpointId: string,
    message: unknown,
    replyToTerminatorId: string,
    correlationString?: string,
    correlationBinary?: Uint8Array,
    options?: ServerRequestOptions,
  ): Promise<boolean> {
    return this.#rt.messaging.request(
      sessionId,
      traceId,
      clientEndpointId,
      message,
      replyToTerminatorId,
      correlationString,
      correlationBinary,
      options,
    );
  }

  /** Publishes to a topic on every node (8.12, BR-1). */
  publish(traceId: string, topicId: string, message: unknown): Promise<void> {
    return this.#rt.topics.publish(traceId, topicId, message);
  }

  /** Closes a session from any node (8.16): 4000 to its client, and the session is terminated. */
  closeSession(sessionId: string, reason: string): Promise<void> {
    return this.#rt.messaging.closeSession(sessionId, reason);
  }

  // ---- Introspection and events ----------------------------------------------------------------------------

  /** Sessions in the store (all nodes). */
  getSessions(filter?: SessionFilter): Promise<SessionInfo[]> {
    return this.#rt.store.getSessions(filter);
  }

  getSessionsCount(filter?: SessionFilter): Promise<number> {
    return this.#rt.store.getSessionsCount(filter);
  }

  /**
   * The sessions held by this node right now, sorted by session id: snapshots with their state, topics and last
   * envelopes (the reference's `getActiveMatsSocketSessions()`).
   */
  getActiveSessions(): ActiveSessionInfo[] {
    return this.#rt.registry
      .connections()
      .filter((c) => c.established)
      .map((c) => activeSessionInfo(c, this.#rt.topics.subscriptions.topicsOf(c)))
      .sort((a, b) => (a.sessionId < b.sessionId ? -1 : a.sessionId > b.sessionId ? 1 : 0));
  }

  /** One session held by this node right now, or undefined if this node does not hold it. */
  getActiveSession(sessionId: string): ActiveSessionInfo | undefined {
    const c = this.#rt.registry.get(sessionId);
    return c?.established ? activeSessionInfo(c, this.#rt.topics.subscriptions.topicsOf(c)) : undefined;
  }

  /** The registered MatsSocket endpoints (built-in ones included), sorted by id. */
  getEndpoints(): EndpointInfo[] {
    return endpointInfos(this.#rt.endpoints.values());
  }

  /** This server implementation's name and version (from its package.json). */
  get implementation(): ImplementationInfo {
    return implementationInfo();
  }

  /** The cluster's nodes as the store knows them: alive or not, and the sessions registered to each. */
  getNodes(): Promise<NodeInfo[]> {
    return this.#rt.store.getNodes();
  }

  /** Number of open WebSocket connections on this node (with or without a session). */
  get connectionCount(): number {
    return this.#gateway.connections.size;
  }

  /** Listens to session established/removed, message and dead-letter events. @returns an unsubscribe function. */
  on<K extends keyof ServerEventMap>(event: K, listener: (payload: ServerEventMap[K]) => void): () => void {
    return this.#rt.events.on(event, listener);
  }

  // ---- Dead letters (BR-2 operator API) --------------------------------------------------------------------

  listDeadLetters(filter?: DeadLetterFilter): Promise<DeadLetterSummary[]> {
    return this.#rt.store.listDeadLetters(filter);
  }

  /** How many dead letters match `filter` (paging fields but `afterId`/`beforeId` are ignored). */
  countDeadLetters(filter?: DeadLetterFilter): Promise<number> {
    return this.#rt.store.countDeadLetters(filter);
  }

  getDeadLetter(id: number): Promise<DeadLetter | null> {
    return this.#rt.store.getDeadLetter(id);
  }

  /** Moves a dead letter back to the end of its session's outbox and pokes the session's node. */
  async requeueDeadLetter(id: number): Promise<RequeueResult> {
    const result = await this.#rt.store.requeueDeadLetter(id);
    if (result.ok) this.#rt.afterCommit.poke([result.currentNode]);
    return result;
  }

  purgeDeadLetters(purge: DeadLetterPurge): Promise<number> {
    return this.#rt.store.purgeDeadLetters(purge);
  }

  /** Runs a scheduled job now (operators, tests). */
  runJobNow(name: JobName): Promise<void> {
    return this.#rt.jobs.runNow(name);
  }
}
