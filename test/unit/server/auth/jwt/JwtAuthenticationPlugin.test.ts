import { expect } from 'chai';
import type {
  AuthenticationResult,
  ConnectionInfo,
} from '../../../../../src/server/auth/AuthenticationPlugin.ts';
import { createJwtVerifier, type JwtVerifier } from '../../../../../src/server/auth/jwt/createJwtVerifier.ts';
import { jwtAuthentication } from '../../../../../src/server/auth/jwt/jwtAuthentication.ts';
import { JwtAuthenticationPlugin } from '../../../../../src/server/auth/jwt/JwtAuthenticationPlugin.ts';
import {
  resolveJwtAuthenticationOptions,
  type JwtAuthenticationOptions,
} from '../../../../../src/server/auth/jwt/JwtAuthenticationOptions.ts';
import type { JwtPrincipal } from '../../../../../src/server/auth/jwt/JwtPrincipal.ts';
import {
  epochSec,
  FakeAuthContext,
  JwksServer,
  signHs256,
  signWith,
  TEST_SECRET,
  testKeyPair,
} from '../../../../helpers/jwtKit.ts';

const CONNECTION = {} as ConnectionInfo;

/** A clock the test moves; the plugin and jose both read it. */
class TestClock {
  ms = Date.now();
  readonly now = (): number => this.ms;
}

function plugin(clock: TestClock, extra: Partial<JwtAuthenticationOptions> = {}) {
  return jwtAuthentication({
    algorithms: ['HS256'],
    secret: TEST_SECRET,
    clockToleranceSec: 1,
    now: clock.now,
    ...extra,
  })(CONNECTION);
}

/** A plugin whose verifications are counted. */
function countingPlugin(clock: TestClock): { plugin: JwtAuthenticationPlugin; verifications: string[] } {
  const resolved = resolveJwtAuthenticationOptions({
    algorithms: ['HS256'],
    secret: TEST_SECRET,
    now: clock.now,
  });
  const verify = createJwtVerifier(resolved);
  const verifications: string[] = [];
  const counting: JwtVerifier = (value) => {
    verifications.push(value);
    return verify(value);
  };
  return { plugin: new JwtAuthenticationPlugin(counting, resolved), verifications };
}

function expectInvalid(result: AuthenticationResult, reason: string): void {
  expect(result).to.deep.equal({ kind: 'invalid', reason });
}

describe('JwtAuthenticationPlugin', () => {
  it('authenticates the user claim with a JwtPrincipal; the same token stays valid', async () => {
    const clock = new TestClock();
    const p = plugin(clock);
    const ctx = new FakeAuthContext();
    const token = await signHs256({ sub: 'alice', roles: 'reader writer', exp: epochSec(60_000, clock.ms) });
    const result = await ctx.frame(p, `Bearer ${token}`);
    expect(result).to.include({ kind: 'authenticated', userId: 'alice', allowedDebugOptions: 0 });
    const principal = ctx.principal as JwtPrincipal;
    expect(principal).to.include({ userId: 'alice' });
    expect(principal.roles).to.deep.equal(['reader', 'writer']);
    expect(await ctx.frame(p)).to.deep.equal({ kind: 'stillValid' });
    expect(await ctx.outgoing(p)).to.deep.equal({ kind: 'stillValid' });
  });

  it('turns invalid once exp (plus tolerance) has passed, incoming and outgoing; a fresh token continues', async () => {
    const clock = new TestClock();
    const p = plugin(clock);
    const ctx = new FakeAuthContext();
    const exp = Math.floor(epochSec(10_000, clock.ms));
    await ctx.frame(p, await signHs256({ sub: 'alice', exp, n: 1 }));
    clock.ms = exp * 1000 + 999;
    expect(await ctx.frame(p)).to.deep.equal({ kind: 'stillValid' });
    clock.ms = exp * 1000 + 1000;
    expectInvalid(await ctx.outgoing(p), 'JWT expired');
    expectInvalid(await ctx.frame(p), 'JWT expired');

    const fresh = await signHs256({ sub: 'alice', exp: exp + 60, n: 2 });
    expect(await ctx.frame(p, `Bearer ${fresh}`)).to.include({ kind: 'authenticated', userId: 'alice' });
    expect((ctx.principal as JwtPrincipal).claims).to.include({ n: 2 });
    expect(await ctx.outgoing(p)).to.deep.equal({ kind: 'stillValid' });
  });

  it("refuses a token of another user on the session, and keeps the session's principal", async () => {
    const clock = new TestClock();
    const p = plugin(clock);
    const ctx = new FakeAuthContext();
    await ctx.frame(p, await signHs256({ sub: 'alice', exp: epochSec(60_000, clock.ms) }));
    const alicePrincipal = ctx.principal;
    const bob = await signHs256({ sub: 'bob', exp: epochSec(60_000, clock.ms) });
    expectInvalid(await ctx.frame(p, `Bearer ${bob}`), "JWT user differs from the session's user");
    expect(ctx.userId).to.equal('alice');
    expect(ctx.principal).to.equal(alicePrincipal);
    // The server keeps asking (REAUTH) while the value in force is Bob's, for incoming and outgoing alike.
    expectInvalid(await ctx.outgoing(p), "JWT user differs from the session's user");
    const alice = await signHs256({ sub: 'alice', exp: epochSec(120_000, clock.ms) });
    expect(await ctx.frame(p, alice)).to.include({ kind: 'authenticated', userId: 'alice' });
  });

  it('turns verification failures into invalid results with a short reason', async () => {
    const clock = new TestClock();
    const p = plugin(clock);
    const garbage = 'Bearer not-a-jwt';
    expectInvalid(
      await p.initialAuthentication(new FakeAuthContext(), garbage),
      'authorization is neither "Bearer <jwt>" nor a JWT',
    );
    const ctx = new FakeAuthContext();
    await ctx.frame(p, await signHs256({ sub: 'alice', exp: epochSec(60_000, clock.ms) }));
    const forged = await signHs256({ sub: 'alice', exp: epochSec(60_000, clock.ms) }, 'x'.repeat(32));
    expectInvalid(await ctx.frame(p, forged), 'JWT signature invalid');
  });

  describe('verification cache', () => {
    it('verifies each distinct value once, however often and concurrently it is evaluated', async () => {
      const clock = new TestClock();
      const { plugin: p, verifications } = countingPlugin(clock);
      const ctx = new FakeAuthContext();
      const token = await signHs256({ sub: 'alice', exp: epochSec(60_000, clock.ms) });
      await ctx.frame(p, token);
      await Promise.all([ctx.frame(p), ctx.outgoing(p), ctx.frame(p, token)]);
      expect(verifications).to.have.length(1);
      const next = await signHs256({ sub: 'alice', exp: epochSec(120_000, clock.ms) });
      await ctx.frame(p, next);
      await ctx.outgoing(p);
      expect(verifications).to.have.length(2);
    });

    it('keeps refusals that cannot change, and verifies again those that can (not yet valid)', async () => {
      const clock = new TestClock();
      const { plugin: p, verifications } = countingPlugin(clock);
      const forged = await signHs256({ sub: 'alice', exp: epochSec(60_000, clock.ms) }, 'y'.repeat(32));
      expectInvalid(await p.initialAuthentication(new FakeAuthContext(), forged), 'JWT signature invalid');
      expectInvalid(await p.initialAuthentication(new FakeAuthContext(), forged), 'JWT signature invalid');
      expect(verifications).to.have.length(1);

      const early = await signHs256({
        sub: 'alice',
        nbf: Math.ceil(epochSec(30_000, clock.ms)),
        exp: epochSec(60_000, clock.ms),
      });
      expectInvalid(await p.initialAuthentication(new FakeAuthContext(), early), 'JWT not yet valid');
      clock.ms += 31_000;
      expect(await p.initialAuthentication(new FakeAuthContext(), early)).to.include({
        kind: 'authenticated',
      });
      expect(verifications).to.have.length(3);
    });
  });

  describe('authorizeUserForTopic', () => {
    it('allows every topic without the option', async () => {
      const p = plugin(new TestClock());
      expect(await p.authorizeUserForTopic!(new FakeAuthContext(), 'any')).to.be.true;
    });

    it("asks the option with the connection's principal", async () => {
      const clock = new TestClock();
      const p = plugin(clock, {
        authorizeUserForTopic: (principal, topic) => topic !== 'admin' || principal.roles.includes('admin'),
      });
      const ctx = new FakeAuthContext();
      expect(await p.authorizeUserForTopic!(ctx, 'news')).to.be.false; // not authenticated yet
      await ctx.frame(
        p,
        await signHs256({ sub: 'alice', roles: ['reader'], exp: epochSec(60_000, clock.ms) }),
      );
      expect(await p.authorizeUserForTopic!(ctx, 'news')).to.be.true;
      expect(await p.authorizeUserForTopic!(ctx, 'admin')).to.be.false;
    });
  });

  it('shares one JWKS (and its cache) between the connections of a factory', async () => {
    const jwks = await JwksServer.start();
    try {
      const key = await testKeyPair('ES256', 'k1');
      jwks.keys = [key.publicJwk];
      const factory = jwtAuthentication({ algorithms: ['ES256'], jwksUrl: jwks.url });
      for (const user of ['u1', 'u2', 'u3']) {
        const token = await signWith(key, { sub: user, exp: epochSec(60_000) });
        expect(await new FakeAuthContext().frame(factory(CONNECTION), token)).to.include({ userId: user });
      }
      expect(jwks.requests).to.equal(1);
    } finally {
      await jwks.close();
    }
  });
});
