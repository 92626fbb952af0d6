import { createPublicKey, type KeyObject } from 'node:crypto';
import { ConfigError } from '../../../errors.ts';
import { silentLogger, type Logger } from '../../../logging.ts';
import type { JwtPrincipal } from './JwtPrincipal.ts';

/** The signature algorithms {@link JwtAuthenticationOptions.algorithms} may list. */
/** The algorithms the plugin verifies. */
export const JWT_ALGORITHMS = ['HS256', 'RS256', 'ES256'] as const;
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];

const ALGORITHMS: readonly JwtAlgorithm[] = JWT_ALGORITHMS;

/** HS256 keys shorter than the hash output make brute-forcing the secret the cheapest attack (RFC 7518 §3.2). */
const MIN_SECRET_BYTES = 32;

/** The store keeps a session's userId in a 255-character column. */
export const MAX_JWT_USER_ID_LENGTH = 255;

/**
 * Options of `jwtAuthentication` (docs/authentication.md §2). Exactly one key source: `secret`,
 * `publicKeyPem` or `jwksUrl`.
 */
export interface JwtAuthenticationOptions {
  /** The algorithms a token may be signed with; a token with any other `alg` is refused. Required, non-empty. */
  algorithms: readonly JwtAlgorithm[];
  /** HS256 shared secret, at least 32 bytes (UTF-8). Only with `algorithms: ['HS256']`. */
  secret?: string;
  /** A public key as SPKI PEM (`-----BEGIN PUBLIC KEY-----`): RSA (2048 bits or more) for RS256, P-256 for ES256. */
  publicKeyPem?: string;
  /**
   * An `http:`/`https:` URL of a JSON Web Key Set (RS256/ES256), shared by all connections. A token whose `kid` is
   * not in the cached set makes it refetch (at most once per `jwksCooldownMs`), so a rotated key verifies.
   */
  jwksUrl?: string;
  /** The `iss` a token must carry (one of them, for an array). @default not checked */
  issuer?: string | readonly string[];
  /** The `aud` a token must carry (one of them, for an array). @default not checked */
  audience?: string | readonly string[];
  /** The claim holding the user id (a non-empty string of at most 255 characters). @default 'sub' */
  userIdClaim?: string;
  /** The claim holding the roles: an array of strings or a space-separated string; absent means none. @default 'roles' */
  rolesClaim?: string;
  /** Leeway for `exp` and `nbf`, in seconds, against clock skew between issuer and node. @default 5 */
  clockToleranceSec?: number;
  /** Refuse tokens without `exp` (a token without one would never ask the client for a new one). @default true */
  requireExp?: boolean;
  /** JWKS: how long one fetch may take, in ms. @default 5000 */
  jwksTimeoutMs?: number;
  /** JWKS: the least time between two fetches caused by an unknown `kid`, in ms. @default 30000 */
  jwksCooldownMs?: number;
  /** JWKS: after this long, in ms, the key set is fetched again before use. @default 600000 */
  jwksCacheMaxAgeMs?: number;
  /**
   * Whether the user may subscribe to a topic (false → SUB_NO_AUTH). @default every topic is allowed
   */
  authorizeUserForTopic?: (principal: JwtPrincipal, topicId: string) => boolean | Promise<boolean>;
  /** Where key set failures (warn) and refused tokens (debug, reason only) are logged. @default silent */
  logger?: Logger;
  /** The clock, epoch ms; for tests. @default Date.now */
  now?: () => number;
}

/** Where the verification key comes from, resolved. */
export type JwtKeySource =
  | { kind: 'secret'; key: Uint8Array }
  | { kind: 'publicKey'; key: KeyObject }
  | {
      kind: 'jwks';
      url: URL;
      timeoutMs: number;
      cooldownMs: number;
      cacheMaxAgeMs: number;
    };

/** {@link JwtAuthenticationOptions} validated, with defaults applied. */
export interface ResolvedJwtAuthenticationOptions {
  algorithms: JwtAlgorithm[];
  keySource: JwtKeySource;
  issuer: string[] | undefined;
  audience: string[] | undefined;
  userIdClaim: string;
  rolesClaim: string;
  clockToleranceSec: number;
  requireExp: boolean;
  authorizeUserForTopic: JwtAuthenticationOptions['authorizeUserForTopic'];
  logger: Logger;
  now: () => number;
}

const KNOWN_OPTIONS = new Set<string>([
  'algorithms',
  'secret',
  'publicKeyPem',
  'jwksUrl',
  'issuer',
  'audience',
  'userIdClaim',
  'rolesClaim',
  'clockToleranceSec',
  'requireExp',
  'jwksTimeoutMs',
  'jwksCooldownMs',
  'jwksCacheMaxAgeMs',
  'authorizeUserForTopic',
  'logger',
  'now',
]);

const KEY_FIELDS = ['secret', 'publicKeyPem', 'jwksUrl'] as const;

/**
 * Validates the options and applies the defaults.
 * @throws ConfigError (code `CONFIG_INVALID`) whose `field` names the offending option.
 */
export function resolveJwtAuthenticationOptions(
  options: JwtAuthenticationOptions,
): ResolvedJwtAuthenticationOptions {
  if (!options || typeof options !== 'object') throw new ConfigError('options', 'must be an object');
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key)) throw new ConfigError(key, 'unknown option');
  }
  const algorithms = resolveAlgorithms(options.algorithms);
  const keySource = resolveKeySource(options, algorithms);
  const logger = options.logger ?? silentLogger;
  if (typeof logger.warn !== 'function' || typeof logger.debug !== 'function') {
    throw new ConfigError('logger', 'must implement Logger');
  }
  const now = options.now ?? Date.now;
  if (typeof now !== 'function') throw new ConfigError('now', 'must be a function');
  const authorizeUserForTopic = options.authorizeUserForTopic;
  if (authorizeUserForTopic !== undefined && typeof authorizeUserForTopic !== 'function') {
    throw new ConfigError('authorizeUserForTopic', 'must be a function');
  }
  return {
    algorithms,
    keySource,
    issuer: resolveStringList('issuer', options.issuer),
    audience: resolveStringList('audience', options.audience),
    userIdClaim: optionalNonEmpty('userIdClaim', options.userIdClaim) ?? 'sub',
    rolesClaim: optionalNonEmpty('rolesClaim', options.rolesClaim) ?? 'roles',
    clockToleranceSec: nonNegative('clockToleranceSec', options.clockToleranceSec, 5),
    requireExp: optionalBoolean('requireExp', options.requireExp, true),
    authorizeUserForTopic,
    logger,
    now,
  };
}

function resolveAlgorithms(value: unknown): JwtAlgorithm[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new ConfigError('algorithms', `required: a non-empty array of ${ALGORITHMS.join(', ')}`);
  }
  for (const alg of value) {
    if (!ALGORITHMS.includes(alg as JwtAlgorithm)) {
      throw new ConfigError('algorithms', `${JSON.stringify(alg)} is not one of ${ALGORITHMS.join(', ')}`);
    }
  }
  return [...new Set(value as JwtAlgorithm[])];
}

function resolveKeySource(options: JwtAuthenticationOptions, algorithms: JwtAlgorithm[]): JwtKeySource {
  const given = KEY_FIELDS.filter((field) => options[field] !== undefined);
  if (given.length !== 1) {
    throw new ConfigError(
      KEY_FIELDS.join('|'),
      given.length === 0 ? 'exactly one key source is required' : `give only one of ${given.join(', ')}`,
    );
  }
  if (options.secret !== undefined) {
    if (typeof options.secret !== 'string') throw new ConfigError('secret', 'must be a string');
    const key = new TextEncoder().encode(options.secret);
    if (key.length < MIN_SECRET_BYTES) {
      throw new ConfigError('secret', `must be at least ${MIN_SECRET_BYTES} bytes, got ${key.length}`);
    }
    requireOnly(algorithms, ['HS256'], 'a secret');
    return { kind: 'secret', key };
  }
  if (options.publicKeyPem !== undefined) return publicKeySource(options.publicKeyPem, algorithms);
  requireOnly(algorithms, ['RS256', 'ES256'], 'a JWKS URL');
  let url: URL;
  try {
    url = new URL(String(options.jwksUrl));
  } catch (err) {
    throw new ConfigError('jwksUrl', `not a URL (${(err as Error).message})`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ConfigError('jwksUrl', `must be an http: or https: URL, got ${url.protocol}`);
  }
  return {
    kind: 'jwks',
    url,
    timeoutMs: nonNegative('jwksTimeoutMs', options.jwksTimeoutMs, 5_000),
    cooldownMs: nonNegative('jwksCooldownMs', options.jwksCooldownMs, 30_000),
    cacheMaxAgeMs: nonNegative('jwksCacheMaxAgeMs', options.jwksCacheMaxAgeMs, 600_000),
  };
}

function publicKeySource(pem: unknown, algorithms: JwtAlgorithm[]): JwtKeySource {
  if (typeof pem !== 'string' || !pem.includes('-----BEGIN PUBLIC KEY-----')) {
    throw new ConfigError('publicKeyPem', 'must be an SPKI PEM (-----BEGIN PUBLIC KEY-----)');
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pem, format: 'pem', type: 'spki' });
  } catch (err) {
    throw new ConfigError('publicKeyPem', `not a readable public key (${(err as Error).message})`);
  }
  if (key.asymmetricKeyType === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048)
      throw new ConfigError('publicKeyPem', `RSA key of ${bits} bits; RS256 needs 2048 or more`);
    requireOnly(algorithms, ['RS256'], 'an RSA public key');
  } else if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') {
    requireOnly(algorithms, ['ES256'], 'a P-256 public key');
  } else {
    throw new ConfigError('publicKeyPem', 'must be an RSA key (RS256) or an EC P-256 key (ES256)');
  }
  return { kind: 'publicKey', key };
}

/** A key verifies only its own algorithm family; listing others would silently refuse every such token. */
function requireOnly(algorithms: JwtAlgorithm[], allowed: JwtAlgorithm[], keyName: string): void {
  const wrong = algorithms.filter((alg) => !allowed.includes(alg));
  if (wrong.length > 0) {
    throw new ConfigError('algorithms', `${wrong.join(', ')} cannot be verified with ${keyName}`);
  }
}

function resolveStringList(field: string, value: unknown): string[] | undefined {
  if (value === undefined) return undefined;
  const list: unknown[] = Array.isArray(value) ? value : [value];
  if (list.length === 0 || list.some((a) => typeof a !== 'string' || a.length === 0)) {
    throw new ConfigError(field, 'must be a non-empty string or a non-empty array of them');
  }
  return list as string[];
}

function optionalNonEmpty(field: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0)
    throw new ConfigError(field, 'must be a non-empty string');
  return value;
}

function optionalBoolean(field: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new ConfigError(field, 'must be a boolean');
  return value;
}

function nonNegative(field: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new ConfigError(field, `must be a finite number >= 0, got ${JSON.stringify(value)}`);
  }
  return value;
}
