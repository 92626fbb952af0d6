import { expect } from 'chai';
import { MatsFactory } from '../../../src/mats/MatsFactory.ts';
import { MatsSocketServer } from '../../../src/server/MatsSocketServer.ts';
import { SqlClusterStore } from '../../../src/store/SqlClusterStore.ts';
import { ListenError, NodeAssembly } from '../../../src/cli/NodeAssembly.ts';
import { ErrorCode, NodeNameInUseError } from '../../../src/errors.ts';
import { silentLogger } from '../../../src/logging.ts';
import { parseDatabaseUrl } from '../../../src/store/database.ts';
import { randomId } from '../../../src/util/ids.ts';
import { createTestDatabase, type TestDatabase } from '../../../harness/databases.ts';
import { RawClient } from '../../helpers/rawClient.ts';
import { requireService } from '../../../harness/services.ts';
import { testAuth, testAuthPlugin } from '../../../harness/startTestCluster.ts';
import { connectSession, describeEachServerEnv } from './serverTestKit.ts';
import { expectRejection } from '../store/storeFixture.ts';

/** A second process started under a running node's name must fail before it disturbs that node. */
describe('NodeAssembly: a second node under the same name [in-memory + MariaDB]', function () {
  this.timeout(20_000);
  let db: TestDatabase | undefined;
  let first: NodeAssembly | undefined;
  const nodeName = `same-${randomId(6)}`;

  const start = (port: number): Promise<NodeAssembly> =>
    NodeAssembly.start({
      appName: 'NodeNameTest',
      instanceName: 'NodeNameTest',
      host: '127.0.0.1',
      nodes: [{ nodeName, port }],
      amqpUrl: undefined,
      db: parseDatabaseUrl(db!.url),
      authenticationPlugin: () => testAuthPlugin(),
      logger: silentLogger,
      stopGraceMs: 200,
      setup: () => undefined,
    });

  before(async function () {
    this.timeout(60_000);
    await requireService(this, 'mariadb');
    db = await createTestDatabase('mysql');
    first = await start(0);
  });

  after(async () => {
    await first?.stop();
    await db?.drop();
  });

  /** The first node's session is still registered to it, and its client still gets answers. */
  async function expectUndisturbed(client: RawClient, sid: string): Promise<void> {
    const node = first!.nodes[0]!;
    expect(await node.store.getCurrentRegisteredNodeForSession(sid)).to.include({ nodename: nodeName });
    client.send([{ t: 'PING', x: 'still-there' }]);
    expect((await client.nextOfType('PONG')).x).to.equal('still-there');
  }

  it('on the running node’s port: ListenError, and the store is not touched', async () => {
    const client = await RawClient.connect(first!.nodes[0]!.webSocketUrl);
    const sid = (await client.hello(testAuth('alice'))).sid as string;
    const err = await expectRejection(start(first!.nodes[0]!.port), ListenError, ErrorCode.CONFIG_INVALID);
    expect(err.detail).to.include('already in use');
    await expectUndisturbed(client, sid);
    await client.close(4000, 'done');
  });

  it('on another port: NodeNameInUseError naming the fix, and the running node keeps its sessions', async () => {
    const client = await RawClient.connect(first!.nodes[0]!.webSocketUrl);
    const sid = (await client.hello(testAuth('alice'))).sid as string;
    const err = await expectRejection(start(0), NodeNameInUseError, ErrorCode.CONFIG_INVALID);
    expect(err.message).to.include(nodeName).and.include('choose another node name, or stop the other node');
    await expectUndisturbed(client, sid);
    await client.close(4000, 'done');
  });
});

describeEachServerEnv('MatsSocketServer.listen(): the port before the store', { nodes: 1 }, (ctx) => {
  it('a busy port fails with EADDRINUSE before boot, so the running node keeps its sessions', async () => {
    const running = ctx().cluster.nodes[0]!;
    const { client, sid } = await connectSession(running.url, 'alice');
    const knex = ctx().cluster.db.dialect === 'sqlite' ? ctx().cluster.db.knex : ctx().cluster.db.connect();
    const store = new SqlClusterStore(knex, { nodeName: running.nodeName, migrate: false });
    const factory = new MatsFactory({
      appName: 'NodeNameTest',
      appVersion: '1.0.0',
      nodeName: running.nodeName,
      transport: ctx().cluster.broker.createTransport(`${running.nodeName}-twin`),
      db: knex,
      queuePrefix: ctx().cluster.broker.prefix,
    });
    const twin = new MatsSocketServer({
      nodeName: running.nodeName,
      instanceName: 'NodeNameTwin',
      matsFactory: factory,
      store,
      authenticationPlugin: () => testAuthPlugin(),
    });
    try {
      const port = Number(new URL(running.url).port);
      const err = await twin.listen({ port }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.have.property('code', 'EADDRINUSE');
      expect(await running.store.getCurrentRegisteredNodeForSession(sid)).to.include({
        nodename: running.nodeName,
      });
      client.send([{ t: 'PING', x: 'still-there' }]);
      expect((await client.nextOfType('PONG')).x).to.equal('still-there');
    } finally {
      await twin.stop(0);
      await factory.stop(0);
      await store.close();
      await client.close(4000, 'done');
    }
  });
});
