/**
 * The README's "Writing endpoints" example as a runnable program: `npx tsx examples/quickstart.ts`.
 * One node on the embedded default, a backend endpoint, a MatsSocket endpoint forwarding to it, and our own client
 * making one request through the whole pipeline. It imports the package by name, as a user's program does; in this
 * repository tsconfig.json's `paths` map the names to the sources, and test/package runs it against the packed
 * package (`npm install matssocket-ts better-sqlite3 ws`).
 */
import { WebSocket } from 'ws';
import { MatsSocketClient } from 'matssocket-ts/client';
import {
  authenticated,
  createDatabase,
  InMemoryBroker,
  InMemoryTransport,
  invalidAuthentication,
  MatsFactory,
  MatsSocketServer,
  migrateLatest,
  SqlClusterStore,
} from 'matssocket-ts';

const knex = createDatabase('sqlite::memory:');
await migrateLatest(knex);
await knex.schema.createTable('orders', (t) => {
  t.string('item');
  t.string('trace');
});
const transport = new InMemoryTransport(new InMemoryBroker(), { name: 'node1' }); // or new AmqpTransport({ url, name })
const mats = new MatsFactory({
  appName: 'Orders',
  appVersion: '1.0',
  nodeName: 'node1',
  transport,
  db: knex,
});

// A backend endpoint: consumes from the queue mats.Orders.place and replies to whoever asked.
mats.single<{ ok: boolean }, { item: string }>('Orders.place', async (ctx, order) => {
  const trx = await ctx.sql(); // the stage's transaction: committed before the reply is sent
  await trx('orders').insert({ item: order.item, trace: ctx.traceId });
  return { ok: true };
});

const server = new MatsSocketServer({
  nodeName: 'node1',
  instanceName: 'Orders',
  matsFactory: mats,
  store: new SqlClusterStore(knex, { nodeName: 'node1' }),
  authenticationPlugin: () => ({
    initialAuthentication: (_ctx, auth) =>
      auth.startsWith('Bearer ') ? authenticated({ user: 'u1' }, 'u1') : invalidAuthentication('no token'),
    reevaluateAuthentication: (ctx) => ctx.stillValid(),
  }),
});
// A MatsSocket endpoint: the client's REQUEST is forwarded; the backend's reply comes back through the outbox.
server.endpoint('Orders.place', { incoming: (ctx) => ctx.forwardEssential('Orders.place', ctx.message) });
const { url } = await server.listen({ port: 0, path: '/matssocket' });

const client = new MatsSocketClient({
  appName: 'Shop',
  appVersion: '1.0',
  urls: [url],
  webSocket: WebSocket,
});
client.setCurrentAuthorization('Bearer demo', Date.now() + 60_000, 5_000);
const reply = await client.request('Orders.place', 'quickstart-1', { item: 'book' });
console.log('reply:', reply.data, '- rows:', await knex('orders').select());

await client.close('done');
await server.stop(1000);
await mats.stop(1000);
await transport.close();
await knex.destroy();
