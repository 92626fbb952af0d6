/**
 * The principal `jwtAuthentication` hands to handlers (`ctx.principal`) for a verified token
 * (docs/authentication.md §3). Frozen: handlers may share it, never change it.
 */
export interface JwtPrincipal {
  /** The user claim (`userIdClaim`, default `sub`); also the session's userId. */
  readonly userId: string;
  /** The roles claim (`rolesClaim`, default `roles`): from an array of strings or a space-separated string. */
  readonly roles: readonly string[];
  /** Every claim of the verified token, as the issuer wrote it. */
  readonly claims: Readonly<Record<string, unknown>>;
}

/**
 * Builds the principal from a verified token's claims, or says why it cannot (the reason names the claim, never
 * its value).
 */
export function jwtPrincipalFromClaims(
  claims: Record<string, unknown>,
  userIdClaim: string,
  rolesClaim: string,
  maxUserIdLength: number,
): JwtPrincipal | { error: string } {
  const userId = claims[userIdClaim];
  if (typeof userId !== 'string' || userId.length === 0) {
    return { error: `JWT has no user claim '${userIdClaim}'` };
  }
  if (userId.length > maxUserIdLength) {
    return { error: `JWT user claim '${userIdClaim}' is longer than ${maxUserIdLength} characters` };
  }
  const roles = parseRoles(claims[rolesClaim]);
  if (roles === undefined) {
    return { error: `JWT roles claim '${rolesClaim}' is neither a string nor an array of strings` };
  }
  return Object.freeze({
    userId,
    roles: Object.freeze(roles),
    claims: deepFreeze({ ...claims }),
  });
}

/** OAuth 2.0's `scope` style (a space-separated string, RFC 8693 §4.2) and the array style both occur. */
function parseRoles(value: unknown): string[] | undefined {
  if (value === undefined || value === null) return [];
  if (typeof value === 'string') return value.split(/\s+/).filter((role) => role.length > 0);
  if (Array.isArray(value) && value.every((role) => typeof role === 'string')) return [...value];
  return undefined;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
