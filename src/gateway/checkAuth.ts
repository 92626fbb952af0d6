import { createPublicKey, type KeyObject } from 'node:crypto';
import { isRecord, type ConfigChecker, type ConfigPath } from './ConfigChecker.ts';
import {
  JWT_ALGORITHMS,
  type GatewayAuthConfig,
  type JwtAlgorithm,
  type JwtAuthConfig,
} from './GatewayConfig.ts';
import { isLoopbackHost } from './loopback.ts';

const AUTH_TYPES = ['jwt', 'insecure-dev'] as const;
const JWT_FIELDS = [
  'type',
  'algorithms',
  'secret',
  'publicKeyPem',
  'jwksUrl',
  'issuer',
  'audience',
  'userIdClaim',
  'rolesClaim',
  'clockToleranceSec',
];
const DEV_FIELDS = ['type', 'allowInsecureNonLoopback'];

/** An HMAC key shorter than the hash is weak (RFC 7518 §3.2 asks for at least 256 bits for HS256). */
const MIN_SECRET_LENGTH = 32;
const MAX_CLOCK_TOLERANCE_SEC = 300;

/** The key type (node:crypto `asymmetricKeyType`) and EC curve each asymmetric algorithm verifies with. */
function keyFits(algorithm: JwtAlgorithm, key: KeyObject): boolean {
  const type = key.asymmetricKeyType;
  if (algorithm === 'RS256') return type === 'rsa';
  return type === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1';
}

/**
 * Checks the `auth` section (docs/gateway.md §6). `jwt`: algorithms (never `none`), exactly one key source that
 * fits them (a secret only for HS*, a public key or JWKS only for the others, a PEM key of the matching type and
 * curve), issuer/audience, claims and clock tolerance. `insecure-dev`: refused on a non-loopback `listenHost`
 * unless `allowInsecureNonLoopback` is true.
 */
export function checkAuth(
  c: ConfigChecker,
  value: unknown,
  listenHost: string | undefined,
): GatewayAuthConfig | undefined {
  const path: ConfigPath = ['auth'];
  if (value === undefined || value === null) {
    c.add(path, 'required', 'required: { type: jwt, … } or { type: insecure-dev }');
    return undefined;
  }
  if (!isRecord(value)) {
    c.add(path, 'type', 'must be a mapping (key: value)');
    return undefined;
  }
  const type = c.oneOf(value, 'type', path, AUTH_TYPES, true);
  if (type === undefined) return undefined;
  if (type === 'insecure-dev') {
    const auth = c.object(value, path, DEV_FIELDS);
    const allow = c.boolean(auth, 'allowInsecureNonLoopback', path) ?? false;
    if (listenHost !== undefined && !isLoopbackHost(listenHost) && !allow) {
      c.add(
        [...path, 'type'],
        'conflict',
        `insecure-dev lets anyone be any user; refused with listen.host '${listenHost}' (not loopback) unless ` +
          'allowInsecureNonLoopback: true',
      );
    }
    return { type, allowInsecureNonLoopback: allow };
  }
  return checkJwt(c, c.object(value, path, JWT_FIELDS), path);
}

function checkJwt(
  c: ConfigChecker,
  auth: Record<string, unknown> | undefined,
  path: ConfigPath,
): JwtAuthConfig | undefined {
  const before = c.issues.length;
  const algorithms = c.stringList(auth, 'algorithms', path, { required: true, nonEmpty: true }) ?? [];
  const known: JwtAlgorithm[] = [];
  algorithms.forEach((a, i) => {
    if ((JWT_ALGORITHMS as readonly string[]).includes(a)) known.push(a as JwtAlgorithm);
    else c.add([...path, 'algorithms', i], 'enum', `must be one of ${JWT_ALGORITHMS.join(', ')}`);
  });
  if (new Set(known).size !== known.length)
    c.add([...path, 'algorithms'], 'conflict', 'lists an algorithm twice');
  const secret = c.string(auth, 'secret', path, { minLength: MIN_SECRET_LENGTH, maxLength: 4096 });
  const publicKeyPem = c.string(auth, 'publicKeyPem', path, { maxLength: 20_000 });
  const jwksUrl = c.string(auth, 'jwksUrl', path, { maxLength: 2048 });
  const given = (['secret', 'publicKeyPem', 'jwksUrl'] as const).filter(
    (k) => auth?.[k] !== undefined && auth[k] !== null,
  );
  if (given.length !== 1) {
    c.add(
      given.length === 0 ? path : [...path, given[1]!],
      given.length === 0 ? 'required' : 'conflict',
      given.length === 0
        ? 'needs one of secret, publicKeyPem, jwksUrl'
        : `give exactly one of secret, publicKeyPem, jwksUrl (found ${given.join(', ')})`,
    );
  }
  const hmac = known.filter((a) => a.startsWith('HS'));
  if (given.length === 1 && given[0] === 'secret' && hmac.length !== known.length) {
    c.add([...path, 'algorithms'], 'conflict', 'a secret verifies only HS256');
  }
  if (given.length === 1 && given[0] !== 'secret' && hmac.length > 0) {
    // Accepting HS* next to a public key lets a token be "signed" with the public key as HMAC secret.
    c.add([...path, 'algorithms'], 'conflict', `${hmac.join(', ')} need a secret, not ${given[0]}`);
  }
  if (publicKeyPem !== undefined) checkPem(c, publicKeyPem, known, [...path, 'publicKeyPem']);
  if (jwksUrl !== undefined) checkJwksUrl(c, jwksUrl, [...path, 'jwksUrl']);
  const issuer = c.stringList(auth, 'issuer', path, { single: true, nonEmpty: true, maxLength: 2048 });
  const audience = c.stringList(auth, 'audience', path, { single: true, nonEmpty: true, maxLength: 2048 });
  const claimRule = { maxLength: 256 };
  const userIdClaim = c.string(auth, 'userIdClaim', path, claimRule) ?? 'sub';
  const rolesClaim = c.string(auth, 'rolesClaim', path, claimRule) ?? 'roles';
  const clockToleranceSec = c.integer(auth, 'clockToleranceSec', path, 0, MAX_CLOCK_TOLERANCE_SEC) ?? 0;
  if (c.issues.length > before) return undefined;
  return {
    type: 'jwt',
    algorithms: known,
    ...(secret !== undefined ? { secret } : {}),
    ...(publicKeyPem !== undefined ? { publicKeyPem } : {}),
    ...(jwksUrl !== undefined ? { jwksUrl } : {}),
    ...(issuer !== undefined ? { issuer } : {}),
    ...(audience !== undefined ? { audience } : {}),
    userIdClaim,
    rolesClaim,
    clockToleranceSec,
  };
}

function checkPem(c: ConfigChecker, pem: string, algorithms: readonly JwtAlgorithm[], at: ConfigPath): void {
  if (!pem.includes('-----BEGIN PUBLIC KEY-----')) {
    c.add(at, 'format', 'must be a PEM public key (-----BEGIN PUBLIC KEY-----)');
    return;
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pem, format: 'pem' });
  } catch (err) {
    c.add(at, 'format', `is not a readable public key (${err instanceof Error ? err.message : String(err)})`);
    return;
  }
  const misfits = algorithms.filter((a) => !a.startsWith('HS') && !keyFits(a, key));
  if (misfits.length > 0) {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    c.add(
      at,
      'conflict',
      `a ${key.asymmetricKeyType ?? 'unknown'}${curve ? ` (${curve})` : ''} key cannot verify ${misfits.join(', ')}`,
    );
  }
}

function checkJwksUrl(c: ConfigChecker, text: string, at: ConfigPath): void {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    c.add(at, 'format', 'must be an absolute URL');
    return;
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  // Keys fetched over plain HTTP could be swapped on the way; only a local key server is trusted without TLS.
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(host))) {
    c.add(at, 'format', 'must be an https:// URL (http:// only to a loopback host)');
  }
  if (url.username || url.password) c.add(at, 'format', 'must not carry credentials');
}
