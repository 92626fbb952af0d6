import { expect } from 'chai';
import { MatsFactory } from '../../../src/mats/MatsFactory.ts';
import { MatsSocketServer } from '../../../src/server/MatsSocketServer.ts';
import { ConfigError } from '../../../src/errors.ts';
import { migrateLatest } from '../../../src/store/migrate.ts';
import { SqlClusterStore } from '../../../src/store/SqlClusterStore.ts';
import { randomId } from '../../../src/util/ids.ts';
import { createTestDatabase, type TestDatabase } from '../../../harness/databases.ts';
import { testAuthPlugin } from '../../../harness/startTestCluster.ts';
import { createTestBroker, type TestBroker } from '../../../harness/transports.ts';

/**
 * The server commits replies and server-initiated messages with the store's rows through its Mats factory's
 * database: a factory on another database would make them non-atomic, so start() refuses it.
 */
describe('MatsSocketServer: the Mats factory must use the store’s database [in-memory + SQLite]', () => {
  const dbs: TestDatabase[] = [];
  let broker: TestBroker | undefined;

  before(async () => {
    broker = await createTestBroker('inmemory');
  });
  after(async () => {
    await broker?.close();
    await Promise.all(dbs.map((d) => d.drop()));
  });

  async function server(
    sameDatabase: boolean,
  ): Promise<{ server: MatsSocketServer; stop: () => Promise<void> }> {
    const storeDb = await createTestDatabase('sqlite');
    dbs.push(storeDb);
    let factoryKnex = storeDb.connect();
    if (!sameDatabase) {
      const other = await createTestDatabase('sqlite');
      dbs.push(other);
      await migrateLatest(other.knex);
      factoryKnex = other.knex;
    }
    const nodeName = `fdb-${randomId(6)}`;
    const store = new SqlClusterStore(storeDb.knex, { nodeName, migrate: true });
    const factory = new MatsFactory({
      appName: 'FactoryDb',
      appVersion: '1.0.0',
      nodeName,
      transport: broker!.createTransport(nodeName),
      db: factoryKnex,
      queuePrefix: broker!.prefix,
    });
    const server = new MatsSocketServer({
      nodeName,
      matsFactory: factory,
      store,
      authenticationPlugin: () => testAuthPlugin(),
    });
    return {
      server,
      stop: async () => {
        await server.stop(0);
        await factory.stop(0);
        await store.close();
      },
    };
  }

  it('starts when both are the same database (another connection to it)', async () => {
    const s = await server(true);
    try {
      await s.server.start();
    } finally {
      await s.stop();
    }
  });

  it('refuses to start with ConfigError naming matsFactory when the factory uses another database', async () => {
    const s = await server(false);
    try {
      const err = await s.server.start().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(ConfigError).with.property('field', 'matsFactory');
    } finally {
      await s.stop();
    }
  });
});
