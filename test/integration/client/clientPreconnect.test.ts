import { expect } from 'chai';
import { WebSocket } from 'ws';
import type { ClientErrorEvent } from '../../../src/client/clientEvents.ts';
import { createOpsHandler } from '../../../src/ops/opsHandler.ts';
import { readPreconnectCookie } from '../../../src/ops/preconnectHandler.ts';
import { createTestDatabase, type TestDatabase } from '../../../harness/databases.ts';
import { testAuth, testAuthPlugin } from '../../../harness/startTestCluster.ts';
import { nextEvent, useClientPool } from '../../helpers/clientKit.ts';
import { NOOP_TERMINATOR, startOpsTestNode, type OpsTestNode } from '../ops/opsKit.ts';

/** What the authentication plugin's `checkHandshake` saw of a WebSocket handshake. */
interface Handshake {
  url: string | undefined;
  cookie: string | undefined;
}

describe('client preconnect and connected, against a node with the ops handler [in-memory broker + SQLite]', function () {
  this.timeout(20_000);
  const pool = useClientPool();
  let db: TestDatabase | undefined;
  let node: OpsTestNode | undefined;
  const handshakes: Handshake[] = [];
  const preconnected: string[] = [];
  const url = (): string => node!.webSocketUrl;

  before(async () => {
    db = await createTestDatabase('sqlite');
    node = await startOpsTestNode(
      db.knex,
      ({ server, store, transport }) =>
        createOpsHandler({
          server,
          store,
          transport,
          preconnect: {
            authorize: (value) => {
              preconnected.push(value);
              return !value.includes('refused');
            },
          },
        }),
      {
        authenticationPlugin: () => ({
          ...testAuthPlugin(),
          checkHandshake: (request) => {
            handshakes.push({ url: request.url, cookie: readPreconnectCookie(request) });
            return true;
          },
        }),
      },
    );
  });
  after(async () => {
    await node?.stop();
    await db?.drop();
  });

  it('preconnect: true GETs the preconnect route before the handshake, which has ?preconnect=true; connected follows the socket', async () => {
    const client = pool.create(url(), testAuth('pre'), { preconnect: true });
    expect(client.connected).to.equal(false);
    await client.send(NOOP_TERMINATOR, 'preconnect-1', {});
    expect(client.connected).to.equal(true);
    expect(preconnected).to.include(testAuth('pre'));
    expect(handshakes.at(-1)!.url).to.equal('/matssocket?preconnect=true');
    expect(node!.server.getActiveSession(client.sessionId!)?.userId).to.equal('pre');

    const lost = nextEvent(client, 'connection', (e) => e.type === 'LOST_CONNECTION');
    client.reconnect('test: disconnect', true);
    await lost;
    expect(client.connected).to.equal(false);
    await client.send(NOOP_TERMINATOR, 'preconnect-2', {});
    expect(client.connected).to.equal(true);
    await client.close('done');
    expect(client.connected).to.equal(false);
  });

  it('a preconnect function can carry the cookie into the handshake in Node (no cookie jar there)', async () => {
    let cookie = '';
    const client = pool.create(url(), testAuth('cookie'), {
      preconnect: async ({ webSocketUrl, authorization, signal }) => {
        const response = await fetch(webSocketUrl.replace('ws', 'http'), {
          headers: { authorization },
          signal,
        });
        if (response.status !== 204) throw new Error(`preconnect answered ${response.status}`);
        cookie = response.headers.get('set-cookie')!.split(';')[0]!;
      },
      webSocket: class extends WebSocket {
        constructor(address: string, protocols?: string | string[]) {
          super(address, protocols, { headers: { cookie } });
        }
      },
    });
    await client.send(NOOP_TERMINATOR, 'preconnect-cookie', {});
    expect(handshakes.at(-1)).to.deep.equal({
      url: '/matssocket?preconnect=true',
      cookie: testAuth('cookie'),
    });
  });

  it('a refused preconnect (401) fails every attempt; the client then closes the session locally (1008)', async () => {
    const before = handshakes.length;
    const client = pool.create(url(), testAuth('refused'), { preconnect: true, maxConnectionAttempts: 2 });
    const errors: ClientErrorEvent[] = [];
    client.on('error', (e) => errors.push(e));
    const closed = nextEvent(client, 'session:closed');
    void client.send(NOOP_TERMINATOR, 'preconnect-refused', {}).catch(() => undefined);
    expect((await closed).code).to.equal(1008);
    const failures = errors.filter((e) => e.type === 'preconnect-failed');
    expect(failures.map((e) => (e.error as { status?: number }).status)).to.deep.equal([401, 401]);
    expect(handshakes.length).to.equal(before);
    expect(node!.server.getActiveSessions().map((s) => s.userId)).to.not.include('refused');
  });
});
