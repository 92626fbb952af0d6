import {
  createServer,
  type IncomingMessage,
  type Server as HttpServer,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Knex } from 'knex';
import { Registry } from 'prom-client';
import { InMemoryBroker } from '../../../src/broker/InMemoryBroker.ts';
import { InMemoryTransport } from '../../../src/broker/InMemoryTransport.ts';
import { MatsFactory } from '../../../src/mats/MatsFactory.ts';
import type { HttpHandler } from '../../../src/ops/httpHandler.ts';
import type { AuthenticationPluginFactory } from '../../../src/server/auth/AuthenticationPlugin.ts';
import { MatsSocketServer } from '../../../src/server/MatsSocketServer.ts';
import { SqlClusterStore } from '../../../src/store/SqlClusterStore.ts';
import { runId } from '../../../harness/runState.ts';
import { testAuthPlugin } from '../../../harness/startTestCluster.ts';
import { testTransportTimings } from '../../../harness/transports.ts';

/** A server terminator the test clients send to, so that their session is established. */
export const NOOP_TERMINATOR = 'Ops.noop';

/** What an ops handler is built from: one node's parts. */
export interface OpsNodeParts {
  readonly server: MatsSocketServer;
  readonly store: SqlClusterStore;
  readonly transport: InMemoryTransport;
  readonly registry: Registry;
}

/** A node with an ops handler mounted in a plain `node:http` server that also carries its WebSocket. */
export interface OpsTestNode extends OpsNodeParts {
  /** The embedded broker: `setAvailable(false)` + `dropConnections()` is a broker outage. */
  readonly broker: InMemoryBroker;
  readonly knex: Knex;
  /** `ws://127.0.0.1:<port>/matssocket` */
  readonly webSocketUrl: string;
  /** `http://127.0.0.1:<port>` */
  readonly httpUrl: string;
  /** Stops the server, factory, store, HTTP server and transport. The knex belongs to the caller. */
  stop(): Promise<void>;
}

let counter = 0;

/**
 * Mounts `handler` the way docs/operations.md §5 shows for a plain `node:http` server: answered → done; not answered
 * → 404; thrown → 500.
 */
export function mount(handler: HttpHandler): (request: IncomingMessage, response: ServerResponse) => void {
  return (request, response) => {
    Promise.resolve(handler(request, response)).then(
      (handled) => {
        if (!handled) response.writeHead(404).end();
      },
      () => {
        if (!response.headersSent) response.writeHead(500).end();
        else response.destroy();
      },
    );
  };
}

/**
 * Starts one MatsSocket node on `knex` (TestAuth unless `options.authenticationPlugin`, an embedded broker of its own,
 * a `Ops.noop` terminator) and serves `ops(parts)` and the WebSocket on one `node:http` server on a free port.
 */
export async function startOpsTestNode(
  knex: Knex,
  ops: (parts: OpsNodeParts) => HttpHandler,
  options: { authenticationPlugin?: AuthenticationPluginFactory } = {},
): Promise<OpsTestNode> {
  const n = ++counter;
  const nodeName = `ops_${runId}_${n}`;
  const store = new SqlClusterStore(knex, { nodeName, migrate: true });
  const broker = new InMemoryBroker();
  const transport = new InMemoryTransport(broker, {
    ...testTransportTimings,
    name: nodeName,
    exchange: `ops${n}.pubsub`,
  });
  const factory = new MatsFactory({
    appName: 'OpsTest',
    appVersion: '1.0.0',
    nodeName,
    transport,
    db: knex,
    queuePrefix: `ops${n}.`,
  });
  const server = new MatsSocketServer({
    nodeName,
    instanceName: `Ops${runId}n${n}`,
    matsFactory: factory,
    store,
    authenticationPlugin: options.authenticationPlugin ?? (() => testAuthPlugin()),
    timings: { stopGraceMs: 200 },
  });
  server.terminator(NOOP_TERMINATOR, () => undefined);
  const registry = new Registry();
  const http = createServer(mount(ops({ server, store, transport, registry })));
  const stop = async (): Promise<void> => {
    await server.stop(200);
    await factory.stop(500);
    await store.close();
    await closeHttp(http);
    await transport.close();
  };
  try {
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(0, '127.0.0.1', () => resolve());
    });
    await server.start();
    server.attach(http, '/matssocket');
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
  const port = (http.address() as AddressInfo).port;
  let stopped: Promise<void> | undefined;
  return {
    server,
    store,
    transport,
    registry,
    broker,
    knex,
    webSocketUrl: `ws://127.0.0.1:${port}/matssocket`,
    httpUrl: `http://127.0.0.1:${port}`,
    stop() {
      stopped ??= stop();
      return stopped;
    },
  };
}

function closeHttp(server: HttpServer): Promise<void> {
  if (!server.listening) return Promise.resolve();
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
