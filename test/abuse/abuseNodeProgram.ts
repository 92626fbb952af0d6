/**
 * A test-only program running ONE MatsSocket node on RabbitMQ + MariaDB with the library's DEFAULT options (only
 * `stopGraceMs` is cut, so the suite ends fast), so the abuse suite measures what users get. Run with
 * `node --expose-gc --import tsx`; configured by the JSON in `ABUSE_NODE_CONFIG` ({@link AbuseNodeConfig}); prints
 * `READY <ws url>` when listening; SIGTERM stops it gracefully.
 *
 * The parent talks to it over the IPC channel ({@link AbuseRequest} → {@link AbuseResponse}): memory figures after a
 * forced GC, and server-side publishes (the topic flood of the never-reading client).
 */
import { AmqpTransport } from '../../src/broker/AmqpTransport.ts';
import { MatsFactory } from '../../src/mats/MatsFactory.ts';
import { MatsSocketServer } from '../../src/server/MatsSocketServer.ts';
import { createDatabase } from '../../src/store/database.ts';
import { SqlClusterStore } from '../../src/store/SqlClusterStore.ts';
import { testAuthPlugin } from '../../harness/startTestCluster.ts';
import { registerAbuseEndpoints } from './abuseEndpoints.ts';

/** What the parent passes in `ABUSE_NODE_CONFIG`. */
export interface AbuseNodeConfig {
  nodeName: string;
  amqpUrl: string;
  dbUrl: string;
  queuePrefix: string;
}

/** Memory of the node process, bytes (`process.memoryUsage()`). */
export interface NodeMemory {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

/** A request over IPC; `id` pairs it with its response. */
export type AbuseRequest =
  | { id: number; op: 'memory'; gc: boolean }
  | { id: number; op: 'publish'; topic: string; count: number; bytes: number };

/** The answer to an {@link AbuseRequest}. */
export type AbuseResponse =
  | { id: number; ok: true; memory?: NodeMemory; connections?: number }
  | { id: number; ok: false; error: string };

const config = JSON.parse(process.env.ABUSE_NODE_CONFIG ?? '') as AbuseNodeConfig;
const knex = createDatabase(config.dbUrl);
const store = new SqlClusterStore(knex, { nodeName: config.nodeName, migrate: true });
await store.boot();
const transport = new AmqpTransport({
  url: config.amqpUrl,
  name: `${config.queuePrefix}${config.nodeName}`,
  exchange: `${config.queuePrefix}pubsub`,
});
const factory = new MatsFactory({
  appName: 'MatsSocketAbuse',
  appVersion: '1.0.0',
  nodeName: config.nodeName,
  transport,
  db: knex,
  queuePrefix: config.queuePrefix,
});
const server = new MatsSocketServer({
  nodeName: config.nodeName,
  matsFactory: factory,
  store,
  authenticationPlugin: () => testAuthPlugin(),
  timings: { stopGraceMs: 500 },
});
registerAbuseEndpoints(server, factory);
const { url } = await server.listen();

const gc = (globalThis as { gc?: () => void }).gc;

function memory(runGc: boolean): NodeMemory {
  // Twice: the first full GC runs finalizers that free more (Buffers' external memory) in the second.
  if (runGc && gc) {
    gc();
    gc();
  }
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers };
}

async function handle(request: AbuseRequest): Promise<AbuseResponse> {
  switch (request.op) {
    case 'memory':
      return { id: request.id, ok: true, memory: memory(request.gc), connections: server.connectionCount };
    case 'publish': {
      const payload = 'p'.repeat(request.bytes);
      for (let i = 0; i < request.count; i++) {
        await server.publish(`abuse-pub-${i}`, request.topic, { i, payload });
      }
      return { id: request.id, ok: true };
    }
  }
}

process.on('message', (request: AbuseRequest) => {
  handle(request).then(
    (response) => process.send?.(response),
    (err: unknown) => process.send?.({ id: request.id, ok: false, error: String(err) }),
  );
});
process.stdout.write(`READY ${url}\n`);

let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  void (async () => {
    await server.stop(300);
    await factory.stop(500);
    await store.close();
    await transport.close();
    await knex.destroy();
    process.exit(0);
  })();
});
