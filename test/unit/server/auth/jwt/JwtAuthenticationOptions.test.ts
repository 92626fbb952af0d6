import { generateKeyPairSync } from 'node:crypto';
import { expect } from 'chai';
import { ConfigError, ErrorCode } from '../../../../../src/errors.ts';
import { jwtAuthentication } from '../../../../../src/server/auth/jwt/jwtAuthentication.ts';
import {
  resolveJwtAuthenticationOptions,
  type JwtAuthenticationOptions,
} from '../../../../../src/server/auth/jwt/JwtAuthenticationOptions.ts';
import { TEST_SECRET } from '../../../../helpers/jwtKit.ts';

const spki = (pair: { publicKey: { export(o: object): string | Buffer } }): string =>
  pair.publicKey.export({ type: 'spki', format: 'pem' }).toString();
const rsaPem = spki(generateKeyPairSync('rsa', { modulusLength: 2048 }));
const shortRsaPem = spki(generateKeyPairSync('rsa', { modulusLength: 1024 }));
const p256Pem = spki(generateKeyPairSync('ec', { namedCurve: 'P-256' }));
const p384Pem = spki(generateKeyPairSync('ec', { namedCurve: 'P-384' }));

const hs = (extra: Record<string, unknown> = {}): JwtAuthenticationOptions => ({
  algorithms: ['HS256'],
  secret: TEST_SECRET,
  ...extra,
});

/** Asserts that resolving `options` fails with CONFIG_INVALID naming `field`, through the public factory too. */
function expectInvalid(options: unknown, field: string): void {
  for (const resolve of [resolveJwtAuthenticationOptions, jwtAuthentication]) {
    expect(() => resolve(options as JwtAuthenticationOptions))
      .to.throw(ConfigError)
      .that.includes({ code: ErrorCode.CONFIG_INVALID, field });
  }
}

describe('resolveJwtAuthenticationOptions', () => {
  it('applies the defaults', () => {
    const o = resolveJwtAuthenticationOptions(hs());
    expect(o).to.include({
      userIdClaim: 'sub',
      rolesClaim: 'roles',
      clockToleranceSec: 5,
      requireExp: true,
      issuer: undefined,
      audience: undefined,
    });
    expect(o.algorithms).to.deep.equal(['HS256']);
    expect(o.keySource.kind).to.equal('secret');
  });

  it('accepts each key source with the algorithms it can verify', () => {
    expect(
      resolveJwtAuthenticationOptions({ algorithms: ['RS256'], publicKeyPem: rsaPem }).keySource.kind,
    ).to.equal('publicKey');
    expect(
      resolveJwtAuthenticationOptions({ algorithms: ['ES256'], publicKeyPem: p256Pem }).keySource.kind,
    ).to.equal('publicKey');
    const jwks = resolveJwtAuthenticationOptions({
      algorithms: ['RS256', 'ES256'],
      jwksUrl: 'https://issuer.example/jwks.json',
    }).keySource;
    expect(jwks).to.deep.include({
      kind: 'jwks',
      timeoutMs: 5000,
      cooldownMs: 30_000,
      cacheMaxAgeMs: 600_000,
    });
  });

  it('keeps an audience list and normalizes a single audience to one', () => {
    expect(resolveJwtAuthenticationOptions(hs({ audience: 'app' })).audience).to.deep.equal(['app']);
    expect(resolveJwtAuthenticationOptions(hs({ audience: ['a', 'b'] })).audience).to.deep.equal(['a', 'b']);
  });

  it('counts the secret in UTF-8 bytes', () => {
    expect(() => resolveJwtAuthenticationOptions(hs({ secret: 'ø'.repeat(16) }))).to.not.throw();
    expectInvalid(hs({ secret: 'x'.repeat(31) }), 'secret');
  });

  describe('refuses, naming the field', () => {
    const cases: [string, unknown, string][] = [
      ['options not an object', null, 'options'],
      ['an unknown option', hs({ secert: 'x' }), 'secert'],
      ['no algorithms', { secret: TEST_SECRET }, 'algorithms'],
      ['empty algorithms', hs({ algorithms: [] }), 'algorithms'],
      ['an unsupported algorithm', hs({ algorithms: ['HS512'] }), 'algorithms'],
      ['the "none" algorithm', hs({ algorithms: ['none'] }), 'algorithms'],
      ['no key source', { algorithms: ['HS256'] }, 'secret|publicKeyPem|jwksUrl'],
      ['two key sources', hs({ jwksUrl: 'https://x.example/jwks' }), 'secret|publicKeyPem|jwksUrl'],
      ['a secret that is not a string', hs({ secret: 42 }), 'secret'],
      ['a short secret', hs({ secret: 'short' }), 'secret'],
      ['a secret with RS256', hs({ algorithms: ['HS256', 'RS256'] }), 'algorithms'],
      ['a PEM that is not SPKI', { algorithms: ['RS256'], publicKeyPem: 'not a key' }, 'publicKeyPem'],
      [
        'an unreadable PEM',
        { algorithms: ['RS256'], publicKeyPem: '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----' },
        'publicKeyPem',
      ],
      ['an RSA key under 2048 bits', { algorithms: ['RS256'], publicKeyPem: shortRsaPem }, 'publicKeyPem'],
      ['an EC key not on P-256', { algorithms: ['ES256'], publicKeyPem: p384Pem }, 'publicKeyPem'],
      ['an RSA key with ES256', { algorithms: ['ES256'], publicKeyPem: rsaPem }, 'algorithms'],
      ['a P-256 key with RS256', { algorithms: ['RS256', 'ES256'], publicKeyPem: p256Pem }, 'algorithms'],
      ['a public key with HS256', { algorithms: ['HS256'], publicKeyPem: rsaPem }, 'algorithms'],
      ['a JWKS URL that is no URL', { algorithms: ['RS256'], jwksUrl: 'not a url' }, 'jwksUrl'],
      ['a JWKS URL that is not http(s)', { algorithms: ['RS256'], jwksUrl: 'file:///etc/jwks' }, 'jwksUrl'],
      ['a JWKS URL with HS256', { algorithms: ['HS256'], jwksUrl: 'https://x.example/jwks' }, 'algorithms'],
      [
        'a negative JWKS timeout',
        { algorithms: ['RS256'], jwksUrl: 'https://x/j', jwksTimeoutMs: -1 },
        'jwksTimeoutMs',
      ],
      [
        'a JWKS cooldown that is not a number',
        { algorithms: ['RS256'], jwksUrl: 'https://x/j', jwksCooldownMs: '1' },
        'jwksCooldownMs',
      ],
      [
        'an infinite JWKS cache age',
        { algorithms: ['RS256'], jwksUrl: 'https://x/j', jwksCacheMaxAgeMs: Infinity },
        'jwksCacheMaxAgeMs',
      ],
      ['an empty issuer', hs({ issuer: '' }), 'issuer'],
      ['an issuer that is not a string', hs({ issuer: 7 }), 'issuer'],
      ['an empty audience list', hs({ audience: [] }), 'audience'],
      ['an audience list with an empty entry', hs({ audience: ['a', ''] }), 'audience'],
      ['an audience that is not a string', hs({ audience: 3 }), 'audience'],
      ['an empty userIdClaim', hs({ userIdClaim: '' }), 'userIdClaim'],
      ['a rolesClaim that is not a string', hs({ rolesClaim: ['roles'] }), 'rolesClaim'],
      ['a negative clock tolerance', hs({ clockToleranceSec: -1 }), 'clockToleranceSec'],
      ['a NaN clock tolerance', hs({ clockToleranceSec: NaN }), 'clockToleranceSec'],
      ['a clock tolerance as a string', hs({ clockToleranceSec: '5' }), 'clockToleranceSec'],
      ['requireExp that is not a boolean', hs({ requireExp: 'yes' }), 'requireExp'],
      [
        'authorizeUserForTopic that is not a function',
        hs({ authorizeUserForTopic: true }),
        'authorizeUserForTopic',
      ],
      ['a logger without methods', hs({ logger: {} }), 'logger'],
      ['a clock that is not a function', hs({ now: 5 }), 'now'],
    ];
    for (const [title, options, field] of cases) {
      it(`${title} (${field})`, () => expectInvalid(options, field));
    }
  });

  it('never puts the secret into the error message', () => {
    const secret = 'x'.repeat(20);
    expect(() => resolveJwtAuthenticationOptions(hs({ secret })))
      .to.throw(ConfigError)
      .that.satisfies((e: Error) => !e.message.includes(secret));
  });
});
