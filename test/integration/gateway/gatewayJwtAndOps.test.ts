import { expect } from 'chai';
import { MatsSocketError } from '../../../src/errors.ts';
import { GatewayNode } from '../../../src/gateway/GatewayNode.ts';
import { resolveGatewayConfig } from '../../../src/gateway/loadGatewayConfig.ts';
import { silentLogger } from '../../../src/logging.ts';
import { runId } from '../../../harness/runState.ts';
import { expectRejection, TerminatorInbox, useClientPool } from '../../helpers/clientKit.ts';
import { epochSec, signHs256, TEST_SECRET } from '../../helpers/jwtKit.ts';
import { RawClient } from '../../helpers/rawClient.ts';

const ADMIN_TOKEN = `admin-token-${'a'.repeat(20)}`;
const SERVER_API_KEY = `server-api-key-${'k'.repeat(20)}`;

/**
 * A gateway node from a configuration with `auth.type: jwt` (HS256), the admin API and the server API: the JWT
 * plugin authenticates and feeds the endpoint rules its roles; the node serves the operator surface of src/ops.
 */
describe('GatewayNode with JWT authentication and the operations handlers [embedded]', function () {
  this.timeout(20_000);
  const pool = useClientPool();
  let gateway: GatewayNode | undefined;
  const gw = (): GatewayNode => gateway ?? expect.fail('gateway not started');
  const httpBase = (): string =>
    gw()
      .webSocketUrl.replace(/^ws/, 'http')
      .replace(/\/matssocket$/, '');

  before(async () => {
    const config = resolveGatewayConfig({
      nodeName: `gwjwt-${runId}`,
      listen: { port: 0 },
      broker: { url: 'memory' },
      database: { url: 'sqlite::memory:' },
      endpoints: [
        { id: 'Shop.echo', to: 'Svc.echo' },
        { id: 'Shop.admin', to: 'Svc.echo', allow: { roles: ['admin'] } },
      ],
      terminators: [{ id: 'Shop.events', from: 'Gw.events' }],
      auth: { type: 'jwt', algorithms: ['HS256'], secret: TEST_SECRET, audience: 'shop' },
      admin: { token: ADMIN_TOKEN },
      serverApi: { key: SERVER_API_KEY },
      stopGraceMs: 200,
    });
    gateway = await GatewayNode.start(config, { logger: silentLogger });
    gateway.node.factory.single('Svc.echo', (_ctx, msg) => ({ echo: msg }));
    expect(await gateway.node.factory.waitForReceiving(10_000)).to.equal(true);
  });

  after(async () => {
    await gateway?.stop();
  });

  const token = (sub: string, extra: Record<string, unknown> = {}): Promise<string> =>
    signHs256({ sub, aud: 'shop', exp: epochSec(60_000), ...extra });

  it('a client with a valid token is served; the roles claim drives the endpoint rule', async () => {
    const alice = pool.create(gw().webSocketUrl, `Bearer ${await token('alice')}`);
    expect((await alice.request<{ echo: unknown }>('Shop.echo', 'j-1', 'hi')).data.echo).to.equal('hi');
    await expectRejection(alice.request('Shop.admin', 'j-2', 'x'), MatsSocketError, 'CLIENT_NACKED');
    const root = pool.create(gw().webSocketUrl, `Bearer ${await token('root', { roles: ['admin'] })}`);
    expect((await root.request<{ echo: unknown }>('Shop.admin', 'j-3', 'x')).data.echo).to.equal('x');
  });

  it('a token for another audience is refused at HELLO (1008)', async () => {
    const other = await signHs256({ sub: 'alice', aud: 'elsewhere', exp: epochSec(60_000) });
    const client = await RawClient.connect(gw().webSocketUrl);
    client.send([{ t: 'HELLO', clv: 'c', an: 'a', av: '1', auth: `Bearer ${other}` }]);
    const closed = await client.closed();
    expect(closed.code).to.equal(1008);
    expect(closed.reason).to.include('audience');
  });

  it('serves readiness, metrics, the admin page and API (its token only) and the server API (its key only)', async () => {
    expect((await fetch(`${httpBase()}/health/ready`)).status).to.equal(200);
    expect(await (await fetch(`${httpBase()}/metrics`)).text()).to.include('matssocket_');
    const admin = (auth: string): Promise<Response> =>
      fetch(`${httpBase()}/api/overview`, { headers: { authorization: `Bearer ${auth}` } });
    expect((await admin(ADMIN_TOKEN)).status).to.equal(200);
    expect((await admin(SERVER_API_KEY)).status).to.equal(401);
    const page = await fetch(`${httpBase()}/admin`);
    expect(page.status).to.equal(200);
    expect(page.headers.get('content-type')).to.contain('text/html');
    const history = await fetch(`${httpBase()}/api/metrics/history`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(history.status, "the admin charts have the node's sampled metrics").to.equal(200);

    const bob = pool.create(gw().webSocketUrl, `Bearer ${await token('bob')}`);
    const inbox = new TerminatorInbox(bob, 'Shop.events');
    await bob.request('Shop.echo', 'j-4', 'connect');
    const send = (key: string): Promise<Response> =>
      fetch(`${httpBase()}/api/server/send-to-user`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ userId: 'bob', terminatorId: 'Shop.events', message: { n: 1 } }),
      });
    expect((await send(ADMIN_TOKEN)).status).to.equal(401);
    const sent = await send(SERVER_API_KEY);
    expect(sent.status).to.equal(200);
    expect((await inbox.waitFor(1))[0]!.data).to.deep.equal({ n: 1 });
  });
});
