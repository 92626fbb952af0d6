import { expect } from 'chai';
import type { AuthorizationRequiredEvent } from '../../../src/client/clientEvents.ts';
import type { MatsSocketClient } from '../../../src/client/MatsSocketClient.ts';
import { jwtAuthentication } from '../../../src/server/auth/jwt/jwtAuthentication.ts';
import type { JwtPrincipal } from '../../../src/server/auth/jwt/JwtPrincipal.ts';
import { createTestDatabase, type TestDatabase } from '../../../harness/databases.ts';
import { startTestCluster, type TestCluster } from '../../../harness/startTestCluster.ts';
import { eventually, useClientPool } from '../../helpers/clientKit.ts';
import { epochSec, signHs256, TEST_SECRET } from '../../helpers/jwtKit.ts';
import { RawClient } from '../../helpers/rawClient.ts';

interface Whoami {
  userId: string;
  roles: readonly string[];
  /** The `n` claim of the token the request was admitted with. */
  n: unknown;
}

/** The client's authorization callbacks, to be awaited one by one. */
class AuthorizationRequests {
  readonly events: AuthorizationRequiredEvent[] = [];
  #waiters: (() => void)[] = [];

  constructor(client: MatsSocketClient) {
    client.setAuthorizationExpiredCallback((event) => {
      this.events.push(event);
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  async waitFor(count: number): Promise<AuthorizationRequiredEvent> {
    await eventually(() => this.events.length >= count, {
      what: `authorization callback #${count}`,
      wake: (w) => this.#waiters.push(w),
    });
    return this.events[count - 1]!;
  }
}

const whoami = (principal: unknown): Whoami => {
  const p = principal as JwtPrincipal;
  return { userId: p.userId, roles: p.roles, n: p.claims.n };
};

/**
 * The built-in JWT authentication with the real server and client (docs/authentication.md §3): expiry drives REAUTH,
 * a fresh token continues the session, another user's token is refused.
 */
describe('jwtAuthentication with MatsSocketServer and MatsSocketClient [in-memory + SQLite]', function () {
  this.timeout(20_000);
  let db: TestDatabase | undefined;
  let cluster: TestCluster | undefined;
  const seenUsers: string[] = [];
  const pool = useClientPool();
  const url = (): string => cluster!.nodes[0]!.url;

  before(async function () {
    this.timeout(60_000);
    db = await createTestDatabase('sqlite');
    cluster = await startTestCluster({
      db,
      transport: 'inmemory',
      // No tolerance: the tests' tokens expire within a second.
      auth: jwtAuthentication({ algorithms: ['HS256'], secret: TEST_SECRET, clockToleranceSec: 0 }),
      endpoints: (server, factory) => {
        server.directEndpoint('Jwt.whoami', (ctx) => {
          seenUsers.push(ctx.userId!);
          ctx.resolve(whoami(ctx.principal));
        });
        // Replies once `untilMs` has passed: the reply reaches the outbox after the token expired.
        factory.single<Whoami, Whoami & { untilMs: number }>('Jwt.slowBackend', async (_ctx, msg) => {
          await new Promise((resolve) => setTimeout(resolve, Math.max(0, msg.untilMs - Date.now())));
          return { userId: msg.userId, roles: msg.roles, n: msg.n };
        });
        server.endpoint<{ untilMs: number }>('Jwt.slowWhoami', {
          incoming: (ctx) => {
            seenUsers.push(ctx.userId!);
            ctx.forwardEssential('Jwt.slowBackend', {
              ...whoami(ctx.principal),
              untilMs: ctx.message.untilMs,
            });
          },
        });
      },
    });
  });

  after(async function () {
    this.timeout(30_000);
    await cluster?.stop();
    await db?.drop();
  });

  beforeEach(() => {
    seenUsers.length = 0;
  });

  it('a request with a JWT works; when the token expires the server asks for REAUTH, and a fresh token completes the pending request in the same session', async () => {
    const expSec = epochSec(1000);
    const first = await signHs256({ sub: 'alice', roles: ['reader'], n: 1, exp: expSec });
    // The client is not told the expiry: the server has to notice it.
    const client = pool.create(url(), `Bearer ${first}`);
    const auth = new AuthorizationRequests(client);

    const reply = await client.request('Jwt.whoami', 'jwt-1', {});
    expect(reply.data).to.deep.equal({ userId: 'alice', roles: ['reader'], n: 1 });
    const sessionId = client.sessionId;

    const pending = client.request('Jwt.slowWhoami', 'jwt-2', { untilMs: expSec * 1000 + 20 });
    expect((await auth.waitFor(1)).type).to.equal('REAUTHENTICATE');
    client.setCurrentAuthorization(
      `Bearer ${await signHs256({ sub: 'alice', roles: ['reader', 'writer'], n: 2, exp: epochSec(60_000) })}`,
    );
    // Admitted with the first token, delivered after the second.
    expect((await pending).data).to.deep.equal({ userId: 'alice', roles: ['reader'], n: 1 });
    expect(client.sessionId).to.equal(sessionId);

    const after = await client.request('Jwt.whoami', 'jwt-3', {});
    expect(after.data).to.deep.equal({ userId: 'alice', roles: ['reader', 'writer'], n: 2 });
    expect(auth.events).to.have.length(1);
  });

  it("a token of another user is refused on the session (REAUTH); the session's user goes on with a token of its own", async () => {
    const client = pool.create(
      url(),
      `Bearer ${await signHs256({ sub: 'alice', n: 1, exp: epochSec(60_000) })}`,
    );
    const auth = new AuthorizationRequests(client);
    expect((await client.request('Jwt.whoami', 'jwt-4', {})).data).to.include({ userId: 'alice' });
    const sessionId = client.sessionId;

    client.setCurrentAuthorization(await signHs256({ sub: 'mallory', n: 2, exp: epochSec(60_000) }));
    const pending = client.request('Jwt.whoami', 'jwt-5', {});
    expect((await auth.waitFor(1)).type).to.equal('REAUTHENTICATE');
    client.setCurrentAuthorization(await signHs256({ sub: 'alice', n: 3, exp: epochSec(60_000) }));
    expect((await pending).data).to.deep.equal({ userId: 'alice', roles: [], n: 3 });
    expect(client.sessionId).to.equal(sessionId);
    expect(seenUsers).to.deep.equal(['alice', 'alice']);
  });

  it("a HELLO resuming the session with another user's token is closed 1008 (docs/protocol.md §8.3)", async () => {
    const alice = await RawClient.connect(url());
    const welcome = await alice.hello(`Bearer ${await signHs256({ sub: 'alice', exp: epochSec(60_000) })}`);
    const mallory = await RawClient.connect(url());
    mallory.send([
      {
        t: 'HELLO',
        clv: 'c',
        an: 'a',
        av: '1',
        auth: `Bearer ${await signHs256({ sub: 'mallory', exp: epochSec(60_000) })}`,
        sid: welcome.sid,
      },
    ]);
    const closed = await mallory.closed();
    expect(closed.code).to.equal(1008);
    expect(closed.reason).to.include('does not match');
    await alice.close(4000, 'done');
  });

  it('an invalid token on HELLO closes 1008 with the short reason, not the token', async () => {
    const expired = await signHs256({ sub: 'alice', exp: epochSec(-10_000) });
    const client = await RawClient.connect(url());
    client.send([{ t: 'HELLO', clv: 'c', an: 'a', av: '1', auth: `Bearer ${expired}` }]);
    const closed = await client.closed();
    expect(closed).to.deep.equal({ code: 1008, reason: 'Initial Auth-eval: JWT expired' });
  });
});
