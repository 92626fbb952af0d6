import { expect } from 'chai';
import { UnsecuredJWT } from 'jose';
import {
  createJwtVerifier,
  type JwtVerification,
  type JwtVerifier,
} from '../../../../../src/server/auth/jwt/createJwtVerifier.ts';
import {
  resolveJwtAuthenticationOptions,
  type JwtAuthenticationOptions,
} from '../../../../../src/server/auth/jwt/JwtAuthenticationOptions.ts';
import type { JwtPrincipal } from '../../../../../src/server/auth/jwt/JwtPrincipal.ts';
import type { Logger } from '../../../../../src/logging.ts';
import {
  epochSec,
  JwksServer,
  signHs256,
  signWith,
  testKeyPair,
  type TestKeyPair,
} from '../../../../helpers/jwtKit.ts';
import { TEST_SECRET } from '../../../../helpers/jwtKit.ts';

const verifier = (options: JwtAuthenticationOptions): JwtVerifier =>
  createJwtVerifier(resolveJwtAuthenticationOptions(options));
const hs = (extra: Partial<JwtAuthenticationOptions> = {}): JwtVerifier =>
  verifier({ algorithms: ['HS256'], secret: TEST_SECRET, ...extra });

function principalOf(v: JwtVerification): JwtPrincipal {
  if (!v.ok) throw new Error(`expected a verified token, got: ${v.reason}`);
  return v.principal;
}

function refused(v: JwtVerification, reason: string, token?: string): void {
  expect(v).to.deep.include({ ok: false, reason });
  if (token !== undefined && !v.ok) expect(v.reason).to.not.include(token.slice(-20));
}

describe('createJwtVerifier', () => {
  let rsa: TestKeyPair;
  let ec: TestKeyPair;
  before(async () => {
    rsa = await testKeyPair('RS256');
    ec = await testKeyPair('ES256');
  });

  describe('valid tokens', () => {
    it('HS256: "Bearer <jwt>" and the bare JWT give the principal', async () => {
      const token = await signHs256({
        sub: 'alice',
        roles: ['reader', 'writer'],
        tenant: 't1',
        exp: epochSec(60_000),
      });
      for (const value of [`Bearer ${token}`, token, `bearer  ${token} `]) {
        const principal = principalOf(await hs()(value));
        expect(principal.userId).to.equal('alice');
        expect(principal.roles).to.deep.equal(['reader', 'writer']);
        expect(principal.claims).to.include({ sub: 'alice', tenant: 't1' });
        expect(
          Object.isFrozen(principal) && Object.isFrozen(principal.roles) && Object.isFrozen(principal.claims),
        ).to.be.true;
      }
    });

    it('RS256 with an SPKI PEM', async () => {
      const token = await signWith(rsa, { sub: 'bob', exp: epochSec(60_000) });
      const verify = verifier({ algorithms: ['RS256'], publicKeyPem: rsa.publicKeyPem });
      expect(principalOf(await verify(`Bearer ${token}`)).userId).to.equal('bob');
    });

    it('ES256 with an SPKI PEM', async () => {
      const token = await signWith(ec, { sub: 'carol', exp: epochSec(60_000) });
      const verify = verifier({ algorithms: ['ES256'], publicKeyPem: ec.publicKeyPem });
      expect(principalOf(await verify(token)).userId).to.equal('carol');
    });

    it('reports when the token counts as expired: exp plus the clock tolerance', async () => {
      const exp = Math.floor(epochSec(60_000));
      const v = await hs({ clockToleranceSec: 2 })(await signHs256({ sub: 'a', exp }));
      expect(v).to.include({ ok: true, expiredFromMs: (exp + 2) * 1000 });
    });

    it('checks issuer and audience (one of the accepted audiences suffices)', async () => {
      const token = await signHs256({
        sub: 'a',
        iss: 'https://idp',
        aud: ['x', 'app'],
        exp: epochSec(60_000),
      });
      expect((await hs({ issuer: 'https://idp', audience: ['app', 'other'] })(token)).ok).to.be.true;
      expect((await hs({ audience: 'app' })(token)).ok).to.be.true;
    });
  });

  describe('time', () => {
    it('refuses an expired token, and accepts it within the clock tolerance', async () => {
      const token = await signHs256({ sub: 'a', exp: epochSec(-3000) });
      refused(await hs({ clockToleranceSec: 0 })(token), 'JWT expired', token);
      expect((await hs({ clockToleranceSec: 5 })(token)).ok).to.be.true;
    });

    it('refuses a token that is not valid yet (as one that may change)', async () => {
      const token = await signHs256({ sub: 'a', nbf: Math.ceil(epochSec(60_000)), exp: epochSec(120_000) });
      const v = await hs()(token);
      expect(v).to.deep.equal({ ok: false, reason: 'JWT not yet valid', mayChange: true });
      const later = Date.now() + 61_000;
      expect((await hs({ now: () => later })(token)).ok).to.be.true;
    });

    it('requires exp unless requireExp is false', async () => {
      const token = await signHs256({ sub: 'a' });
      refused(await hs()(token), "JWT has no 'exp' claim");
      expect(await hs({ requireExp: false })(token)).to.include({ ok: true, expiredFromMs: undefined });
    });
  });

  describe('refusals', () => {
    it('a wrong signature (HS256 with another secret, RS256 with another key)', async () => {
      const hsToken = await signHs256(
        { sub: 'a', exp: epochSec(60_000) },
        'another-secret-another-secret-xx',
      );
      refused(await hs()(hsToken), 'JWT signature invalid', hsToken);
      const other = await testKeyPair('RS256');
      const rsToken = await signWith(other, { sub: 'a', exp: epochSec(60_000) });
      refused(
        await verifier({ algorithms: ['RS256'], publicKeyPem: rsa.publicKeyPem })(rsToken),
        'JWT signature invalid',
        rsToken,
      );
    });

    it('a tampered payload', async () => {
      const token = await signHs256({ sub: 'a', exp: epochSec(60_000) });
      const [header, , signature] = token.split('.');
      const forged = Buffer.from(JSON.stringify({ sub: 'admin', exp: epochSec(60_000) })).toString(
        'base64url',
      );
      refused(await hs()(`${header}.${forged}.${signature}`), 'JWT signature invalid');
    });

    it('an algorithm that is not allowed, and unsigned tokens', async () => {
      const hsToken = await signHs256({ sub: 'a', exp: epochSec(60_000) });
      refused(
        await verifier({ algorithms: ['RS256'], publicKeyPem: rsa.publicKeyPem })(hsToken),
        'JWT algorithm not allowed',
      );
      const unsecured = new UnsecuredJWT({ sub: 'a', exp: epochSec(60_000) }).encode();
      refused(await hs()(unsecured), 'JWT algorithm not allowed');
    });

    it('a wrong audience', async () => {
      const token = await signHs256({ sub: 'a', aud: 'other-app', exp: epochSec(60_000) });
      refused(await hs({ audience: 'app' })(token), 'JWT audience not accepted', token);
      refused(
        await hs({ audience: 'app' })(await signHs256({ sub: 'a', exp: epochSec(60_000) })),
        "JWT has no 'aud' claim",
      );
    });

    it('a wrong issuer', async () => {
      const token = await signHs256({ sub: 'a', iss: 'https://evil', exp: epochSec(60_000) });
      refused(await hs({ issuer: 'https://idp' })(token), 'JWT issuer not accepted', token);
    });

    it('a missing, empty or overlong user claim; a custom user claim', async () => {
      refused(
        await hs()(await signHs256({ name: 'a', exp: epochSec(60_000) })),
        "JWT has no user claim 'sub'",
      );
      refused(await hs()(await signHs256({ sub: '', exp: epochSec(60_000) })), "JWT has no user claim 'sub'");
      refused(
        await hs()(await signHs256({ sub: 'u'.repeat(256), exp: epochSec(60_000) })),
        "JWT user claim 'sub' is longer than 255 characters",
      );
      const token = await signHs256({ sub: 'ignored', uid: 'user-7', exp: epochSec(60_000) });
      expect(principalOf(await hs({ userIdClaim: 'uid' })(token)).userId).to.equal('user-7');
      refused(await hs({ userIdClaim: 'email' })(token), "JWT has no user claim 'email'");
    });

    it('values that are no JWT, without throwing', async () => {
      for (const value of [
        '',
        '   ',
        'Bearer',
        'garbage',
        'Basic dXNlcjpwdw==',
        'Bearer a b',
        'Bearer ...',
      ]) {
        refused(await hs()(value), 'authorization is neither "Bearer <jwt>" nor a JWT');
      }
      for (const value of ['Bearer a.b.c', 'e30.e30.', 'e30.e30.e30']) {
        refused(await hs()(value), 'JWT malformed');
      }
    });
  });

  describe('roles', () => {
    const rolesOf = async (roles: unknown, rolesClaim?: string): Promise<JwtVerification> =>
      hs(rolesClaim ? { rolesClaim } : {})(
        await signHs256({ sub: 'a', roles, scope: roles, exp: epochSec(60_000) }),
      );

    it('as an array of strings', async () => {
      expect(principalOf(await rolesOf(['a', 'b'])).roles).to.deep.equal(['a', 'b']);
    });

    it('as a space-separated string (e.g. OAuth scope)', async () => {
      expect(principalOf(await rolesOf(' read  write admin ', 'scope')).roles).to.deep.equal([
        'read',
        'write',
        'admin',
      ]);
    });

    it('absent: none', async () => {
      expect(
        principalOf(await hs()(await signHs256({ sub: 'a', exp: epochSec(60_000) }))).roles,
      ).to.deep.equal([]);
    });

    it('of another type: refused', async () => {
      refused(await rolesOf(5), "JWT roles claim 'roles' is neither a string nor an array of strings");
      refused(await rolesOf(['a', 1]), "JWT roles claim 'roles' is neither a string nor an array of strings");
    });
  });

  describe('JWKS URL', () => {
    let jwks: JwksServer;
    beforeEach(async () => {
      jwks = await JwksServer.start();
    });
    afterEach(() => jwks.close());

    it('verifies with the served key, and with a new kid after the key set changed (rotation)', async () => {
      const keyA = await testKeyPair('RS256', 'key-a');
      const keyB = await testKeyPair('ES256', 'key-b');
      jwks.keys = [keyA.publicJwk];
      const verify = verifier({ algorithms: ['RS256', 'ES256'], jwksUrl: jwks.url, jwksCooldownMs: 0 });
      const tokenA = await signWith(keyA, { sub: 'a', exp: epochSec(60_000) });
      expect(principalOf(await verify(`Bearer ${tokenA}`)).userId).to.equal('a');
      expect(principalOf(await verify(`Bearer ${tokenA}`)).userId).to.equal('a');
      expect(jwks.requests).to.equal(1);

      jwks.keys = [keyB.publicJwk];
      const tokenB = await signWith(keyB, { sub: 'b', exp: epochSec(60_000) });
      expect(principalOf(await verify(tokenB)).userId).to.equal('b');
      expect(jwks.requests).to.equal(2);
      // Key A is gone from the set: a token signed with it no longer verifies.
      refused(await verify(tokenA), 'JWT signing key not found');
    });

    it('within the cooldown an unknown kid is refused as one that may change', async () => {
      const keyA = await testKeyPair('ES256', 'key-a');
      const keyB = await testKeyPair('ES256', 'key-b');
      jwks.keys = [keyA.publicJwk];
      const verify = verifier({ algorithms: ['ES256'], jwksUrl: jwks.url, jwksCooldownMs: 60_000 });
      expect((await verify(await signWith(keyA, { sub: 'a', exp: epochSec(60_000) }))).ok).to.be.true;
      jwks.keys = [keyB.publicJwk];
      const v = await verify(await signWith(keyB, { sub: 'b', exp: epochSec(60_000) }));
      expect(v).to.deep.equal({ ok: false, reason: 'JWT signing key not found', mayChange: true });
    });

    it('a key set that cannot be fetched: refused as one that may change, logged as a warning', async () => {
      const key = await testKeyPair('RS256', 'key-a');
      jwks.status = 500;
      const warnings: object[] = [];
      const logger: Logger = {
        trace() {},
        debug() {},
        info() {},
        warn: (obj) => warnings.push(obj),
        error() {},
        child: () => logger,
      };
      const token = await signWith(key, { sub: 'a', exp: epochSec(60_000) });
      const verify = verifier({ algorithms: ['RS256'], jwksUrl: `${jwks.url}?x=secret`, logger });
      expect(await verify(token)).to.deep.equal({
        ok: false,
        reason: 'JWT key set unavailable',
        mayChange: true,
      });
      expect(warnings).to.have.length(1);
      expect(JSON.stringify(warnings[0])).to.not.include('secret').and.not.include(token.slice(-20));

      await jwks.close();
      expect(await verify(token)).to.deep.include({ ok: false, reason: 'JWT key set unavailable' });
      jwks = await JwksServer.start();
    });
  });
});
