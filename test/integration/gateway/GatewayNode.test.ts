import { expect } from 'chai';
import type { InMemoryTransport } from '../../../src/broker/InMemoryTransport.ts';
import type { MessageEvent } from '../../../src/client/clientEvents.ts';
import { MatsSocketError } from '../../../src/errors.ts';
import { GatewayNode } from '../../../src/gateway/GatewayNode.ts';
import { resolveGatewayConfig } from '../../../src/gateway/loadGatewayConfig.ts';
import { silentLogger } from '../../../src/logging.ts';
import { runId } from '../../../harness/runState.ts';
import {
  eventually,
  expectRejection,
  nextEvent,
  TerminatorInbox,
  useClientPool,
} from '../../helpers/clientKit.ts';

interface EchoReply {
  echo: unknown;
  sessionId: string;
}

/**
 * A gateway node built in-process from a configuration object, on the embedded stack, with the backend as Mats
 * endpoints on the node's own factory: forwarding modes, allow rules, pushes by session and by user, refusals, and
 * publishing.
 */
describe('GatewayNode [embedded: in-process broker + SQLite]', function () {
  this.timeout(20_000);
  const pool = useClientPool();
  let gateway: GatewayNode | undefined;
  const gw = (): GatewayNode => gateway ?? expect.fail('gateway not started');

  before(async () => {
    const config = resolveGatewayConfig({
      nodeName: `gwnode-${runId}`,
      listen: { port: 0 },
      broker: { url: 'memory' },
      database: { url: 'sqlite::memory:' },
      endpoints: [
        { id: 'Shop.echo', to: 'Svc.echo' },
        { id: 'Shop.quote', to: 'Svc.flags', mode: 'forward-nonessential', timeoutMs: 5000 },
        { id: 'Shop.place', to: 'Svc.flags' },
        { id: 'Shop.admin', to: 'Svc.echo', allow: { roles: ['admin'] } },
      ],
      terminators: [{ id: 'Shop.events', from: 'Gw.events' }],
      publish: { from: 'Gw.publish' },
      topics: [{ pattern: 'prices.*' }],
      auth: { type: 'insecure-dev' },
      stopGraceMs: 200,
    });
    gateway = await GatewayNode.start(config, { logger: silentLogger });
    const factory = gateway.node.factory;
    factory.single<EchoReply, unknown>('Svc.echo', (ctx, msg) => ({
      echo: msg,
      sessionId: ctx.getString('matsSocketSessionId') ?? '',
    }));
    factory.single('Svc.flags', (ctx) => ({
      nonPersistent: ctx.isNonPersistent,
      interactive: ctx.isInteractive,
    }));
    expect(await factory.waitForReceiving(10_000)).to.equal(true);
  });

  after(async () => {
    await gateway?.stop();
  });

  const client = (user: string) => pool.create(gw().webSocketUrl, user);

  /** What a backend does: a Mats SEND to one of the node's endpoints. */
  async function backendSends(to: string, traceId: string, data: unknown): Promise<void> {
    await gw()
      .node.factory.getDefaultInitiator()
      .initiate((init) => init.traceId(traceId).from('Test.backend').to(to).send(data));
  }

  it('forwards with the session id sideload; essential is persistent, non-essential not; both interactive', async () => {
    const c = client('alice');
    const echo = await c.request<EchoReply>('Shop.echo', 'echo-1', { n: 1 });
    expect(echo.data.echo).to.deep.equal({ n: 1 });
    expect(echo.data.sessionId).to.equal(c.sessionId);
    expect((await c.request('Shop.quote', 'quote-1', {})).data).to.deep.equal({
      nonPersistent: true,
      interactive: true,
    });
    expect((await c.request('Shop.place', 'place-1', {})).data).to.deep.equal({
      nonPersistent: false,
      interactive: true,
    });
  });

  it("an endpoint's allow rule NACKs everyone else", async () => {
    const error = await expectRejection(
      client('alice:support').request('Shop.admin', 'adm-1', {}),
      MatsSocketError,
      'CLIENT_NACKED',
    );
    expect(error.message).to.contain('denied');
    expect((await client('bob:admin').request<EchoReply>('Shop.admin', 'adm-2', 'x')).data.echo).to.equal(
      'x',
    );
  });

  it('a backend pushes to one session, or to every session of a user, through the terminator endpoint', async () => {
    const carolA = client('carol');
    const carolB = client('carol');
    const dave = client('dave');
    const inbox = (c: typeof carolA): TerminatorInbox => new TerminatorInbox(c, 'Shop.events');
    const [a, b, d] = [inbox(carolA), inbox(carolB), inbox(dave)];
    // Sessions exist once established: a round trip each.
    const sessionA = (await carolA.request<EchoReply>('Shop.echo', 'sa', 0)).data.sessionId;
    await carolB.request('Shop.echo', 'sb', 0);
    await dave.request('Shop.echo', 'sd', 0);

    await backendSends('Gw.events', 'push-session', { sessionId: sessionA, message: { to: 'one' } });
    expect((await a.waitFor(1, 5000)).map((m: MessageEvent) => m.data)).to.deep.equal([{ to: 'one' }]);
    expect(a.messages[0]!.traceId).to.equal('push-session');

    await backendSends('Gw.events', 'push-user', { userId: 'carol', message: { to: 'all of carol' } });
    await a.waitFor(2, 5000);
    expect((await b.waitFor(1, 5000)).map((m) => m.data)).to.deep.equal([{ to: 'all of carol' }]);
    // dave's later round trip: a push to him would have been stored (and delivered) before its reply.
    await dave.request('Shop.echo', 'sd-barrier', 0);
    expect(d.messages).to.deep.equal([]);
    expect(b.messages).to.have.length(1);
  });

  it('a push naming no session (or both) is refused: dead-lettered at once, not retried', async () => {
    const broker = (gw().node.transport as InMemoryTransport).broker;
    await backendSends('Gw.events', 'push-bad-1', { message: 'to whom?' });
    await backendSends('Gw.events', 'push-bad-2', { sessionId: 's', userId: 'u', message: 'both' });
    await eventually(() => broker.queueDepth('DLQ.mats.Gw.events') === 2, { what: 'two dead letters' });
  });

  it('a backend publishes to a topic through publish.from; the topic rules decide who may listen', async () => {
    const c = client('erin');
    const prices: unknown[] = [];
    const subscribed = nextEvent(c, 'subscription', (e) => e.topicId === 'prices.book');
    c.subscribe('prices.book', (event) => prices.push(event.data));
    expect((await subscribed).type).to.equal('OK');
    const refused = nextEvent(c, 'subscription', (e) => e.topicId === 'secret.book');
    c.subscribe('secret.book', () => undefined);
    expect((await refused).type).to.equal('NOT_AUTHORIZED');
    await backendSends('Gw.publish', 'pub-1', { topic: 'prices.book', message: { price: 12 } });
    await eventually(() => prices.length === 1, { what: 'the publication' });
    expect(prices).to.deep.equal([{ price: 12 }]);
  });
});
