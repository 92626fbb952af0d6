import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** Host names a Host check always accepts: the loopback names a local browser or tool uses. */
export const LOOPBACK_HOSTS: readonly string[] = ['localhost', '127.0.0.1', '[::1]'];

/** The shortest bearer token (admin token, server API key) accepted, in characters (a generated one has 43). */
export const MIN_BEARER_TOKEN_LENGTH = 16;

/** Whether `token` can be a bearer token: {@link MIN_BEARER_TOKEN_LENGTH}+ visible ASCII characters (header-safe). */
export function isValidBearerToken(token: string): boolean {
  return token.length >= MIN_BEARER_TOKEN_LENGTH && /^[\x21-\x7e]+$/.test(token);
}

/** Why a bearer check refused a request. */
export type AccessRefusal = 'host' | 'unauthenticated' | 'bad_token';

/** Options of {@link createBearerCheck}. */
export interface BearerCheckOptions {
  /**
   * The token a request must carry as `Authorization: Bearer <token>`; at least {@link MIN_BEARER_TOKEN_LENGTH}
   * characters of visible ASCII.
   */
  token: string;
  /**
   * Host names (no port; IPv6 in brackets) accepted in the `Host` header besides {@link LOOPBACK_HOSTS}; a request
   * naming another host is refused (`'host'`), so a DNS-rebinding page (its own name resolving to this node)
   * cannot reach the surface. `undefined`: no Host check.
   * @default undefined
   */
  allowedHosts?: readonly string[] | undefined;
  /** Called for each refused request (for a metric). */
  onRefused?: ((reason: AccessRefusal) => void) | undefined;
}

/**
 * Checks a request's `Host` header (when configured) and bearer token; returns why it is refused, or `undefined` when
 * it may pass. It answers nothing: each surface words its own refusal.
 */
export type BearerCheck = (request: IncomingMessage) => AccessRefusal | undefined;

/** The `Host` header's name without the port, lower case; undefined if absent or malformed. */
export function hostNameOf(hostHeader: string | undefined): string | undefined {
  if (hostHeader === undefined) return undefined;
  const host = hostHeader.trim().toLowerCase();
  const match = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:\d{1,5})?$/.exec(host);
  return match?.[1]?.replace(/\.$/, '');
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/**
 * Creates a bearer check: the `Host` header must name an allowed host (if `allowedHosts` is given), then the bearer
 * token must match. Tokens are compared as SHA-256 digests in constant time, so neither the content nor the length
 * of the expected token leaks through timing.
 * @throws RangeError when the token is too short or not visible ASCII.
 */
export function createBearerCheck(options: BearerCheckOptions): BearerCheck {
  if (!isValidBearerToken(options.token)) {
    throw new RangeError(
      `a bearer token must be at least ${MIN_BEARER_TOKEN_LENGTH} visible ASCII characters without spaces`,
    );
  }
  const expected = digest(options.token);
  const hosts =
    options.allowedHosts === undefined
      ? undefined
      : new Set([...LOOPBACK_HOSTS, ...options.allowedHosts.map((h) => h.toLowerCase())]);
  const refuse = (reason: AccessRefusal): AccessRefusal => {
    options.onRefused?.(reason);
    return reason;
  };
  return (request) => {
    if (hosts) {
      const host = hostNameOf(request.headers.host);
      if (host === undefined || !hosts.has(host)) return refuse('host');
    }
    const match = /^Bearer +(\S+) *$/i.exec(request.headers.authorization ?? '');
    if (!match) return refuse('unauthenticated');
    if (!timingSafeEqual(digest(match[1]!), expected)) return refuse('bad_token');
    return undefined;
  };
}
