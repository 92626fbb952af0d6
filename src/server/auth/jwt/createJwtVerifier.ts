import type { KeyObject } from 'node:crypto';
import { createRemoteJWKSet, errors, jwtVerify, type JWTVerifyGetKey, type JWTVerifyOptions } from 'jose';
import {
  MAX_JWT_USER_ID_LENGTH,
  type JwtKeySource,
  type ResolvedJwtAuthenticationOptions,
} from './JwtAuthenticationOptions.ts';
import { jwtPrincipalFromClaims, type JwtPrincipal } from './JwtPrincipal.ts';

/** The outcome of verifying one authorization value. Reasons are short and never contain the token. */
export type JwtVerification =
  | {
      ok: true;
      principal: JwtPrincipal;
      /** From when on, epoch ms, the token counts as expired (`exp` plus the clock tolerance); none without `exp`. */
      expiredFromMs: number | undefined;
    }
  | {
      ok: false;
      reason: string;
      /** The same value may verify later (not yet valid, key set unreachable, key not published yet). */
      mayChange: boolean;
    };

/** Verifies an authorization value (`Bearer <jwt>` or the bare JWT). Never rejects. */
export type JwtVerifier = (authorization: string) => Promise<JwtVerification>;

const BEARER = /^Bearer\s+(\S+)$/i;
/** JWS compact serialization: three base64url parts (an unsigned token has an empty third). */
const COMPACT_JWS = /^[\w-]+\.[\w-]+\.[\w-]*$/;

/**
 * Creates the verifier one `jwtAuthentication` factory shares between all its connections, so that a JWKS is
 * fetched and cached once per factory, not per connection.
 */
export function createJwtVerifier(options: ResolvedJwtAuthenticationOptions): JwtVerifier {
  const key = verificationKey(options.keySource);
  const base: JWTVerifyOptions = {
    algorithms: options.algorithms,
    clockTolerance: options.clockToleranceSec,
    requiredClaims: options.requireExp ? ['exp'] : [],
    ...(options.issuer !== undefined ? { issuer: options.issuer } : {}),
    ...(options.audience !== undefined ? { audience: options.audience } : {}),
  };
  const jwksLocation =
    options.keySource.kind === 'jwks'
      ? options.keySource.url.origin + options.keySource.url.pathname
      : undefined;
  return async (authorization) => {
    const token = tokenOf(authorization);
    if (token === undefined) {
      return { ok: false, reason: 'authorization is neither "Bearer <jwt>" nor a JWT', mayChange: false };
    }
    try {
      const verifyOptions = { ...base, currentDate: new Date(options.now()) };
      const { payload } =
        typeof key === 'function'
          ? await jwtVerify(token, key, verifyOptions)
          : await jwtVerify(token, key, verifyOptions);
      const principal = jwtPrincipalFromClaims(
        payload,
        options.userIdClaim,
        options.rolesClaim,
        MAX_JWT_USER_ID_LENGTH,
      );
      if ('error' in principal) return { ok: false, reason: principal.error, mayChange: false };
      const expiredFromMs =
        typeof payload.exp === 'number' ? (payload.exp + options.clockToleranceSec) * 1000 : undefined;
      return { ok: true, principal, expiredFromMs };
    } catch (err) {
      const failure = describeFailure(err, jwksLocation !== undefined);
      if (failure.keySetProblem) {
        options.logger.warn(
          { jwksUrl: jwksLocation, code: errorCode(err) },
          'JWT authentication: the JSON Web Key Set could not be fetched',
        );
      }
      return { ok: false, reason: failure.reason, mayChange: failure.mayChange };
    }
  };
}

function verificationKey(source: JwtKeySource): Uint8Array | KeyObject | JWTVerifyGetKey {
  switch (source.kind) {
    case 'secret':
    case 'publicKey':
      return source.key;
    case 'jwks':
      return createRemoteJWKSet(source.url, {
        timeoutDuration: source.timeoutMs,
        cooldownDuration: source.cooldownMs,
        cacheMaxAge: source.cacheMaxAgeMs,
      });
  }
}

function tokenOf(authorization: string): string | undefined {
  const trimmed = authorization.trim();
  const token = BEARER.exec(trimmed)?.[1] ?? trimmed;
  return COMPACT_JWS.test(token) ? token : undefined;
}

function errorCode(err: unknown): string {
  return err instanceof errors.JOSEError ? err.code : ((err as Error)?.name ?? typeof err);
}

/** Maps jose's errors to our reasons; jose's own messages are not passed on (they may quote claim values). */
function describeFailure(
  err: unknown,
  remoteKeySet: boolean,
): { reason: string; mayChange: boolean; keySetProblem: boolean } {
  const permanent = (reason: string) => ({ reason, mayChange: false, keySetProblem: false });
  const unavailable = { reason: 'JWT key set unavailable', mayChange: true, keySetProblem: true };
  if (!(err instanceof errors.JOSEError)) {
    // A failed fetch (DNS, connection refused) surfaces as a plain TypeError from fetch().
    return remoteKeySet ? unavailable : permanent('JWT could not be verified');
  }
  switch (err.code) {
    case 'ERR_JWT_EXPIRED':
      return permanent('JWT expired');
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED': {
      const claim = (err as errors.JWTClaimValidationFailed).claim;
      const reason = (err as errors.JWTClaimValidationFailed).reason;
      if (claim === 'nbf') return { reason: 'JWT not yet valid', mayChange: true, keySetProblem: false };
      if (reason === 'missing') return permanent(`JWT has no '${claim}' claim`);
      if (claim === 'aud') return permanent('JWT audience not accepted');
      if (claim === 'iss') return permanent('JWT issuer not accepted');
      return permanent(`JWT claim '${claim}' invalid`);
    }
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return permanent('JWT signature invalid');
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return permanent('JWT algorithm not allowed');
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
      return permanent('JWT malformed');
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return { reason: 'JWT signing key not found', mayChange: true, keySetProblem: false };
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return { reason: 'JWT signing key ambiguous', mayChange: true, keySetProblem: false };
    case 'ERR_JWKS_TIMEOUT':
    case 'ERR_JWKS_INVALID':
    case 'ERR_JOSE_GENERIC': // the JWKS URL answered other than 200
    case 'ERR_JWK_INVALID':
    case 'ERR_JWE_DECRYPTION_FAILED':
    case 'ERR_JWE_INVALID':
    default:
      return remoteKeySet ? unavailable : permanent('JWT could not be verified');
  }
}
