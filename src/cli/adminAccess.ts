import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Host names every admin guard accepts: the loopback names a local browser uses. */
export const LOOPBACK_HOSTS: readonly string[] = ['localhost', '127.0.0.1', '[::1]'];

/** The shortest admin token accepted, in characters (a generated one has 43). */
export const MIN_ADMIN_TOKEN_LENGTH = 16;

/** Whether `token` can be an admin token: {@link MIN_ADMIN_TOKEN_LENGTH}+ visible ASCII characters (header-safe). */
export function isValidAdminToken(token: string): boolean {
  return token.length >= MIN_ADMIN_TOKEN_LENGTH && /^[\x21-\x7e]+$/.test(token);
}

/** Why the guard refused a request. */
export type AdminRefusal = 'host' | 'unauthenticated' | 'bad_token';

/** Options of {@link createAdminAccess}. */
export interface AdminAccessOptions {
  /**
   * The bearer token an admin request must carry (`Authorization: Bearer <token>`); at least
   * {@link MIN_ADMIN_TOKEN_LENGTH} characters of visible ASCII.
   */
  token: string;
  /**
   * Host names (no port; IPv6 in brackets) accepted in the `Host` header besides {@link LOOPBACK_HOSTS}. Others get
   * 403, so a DNS-rebinding page (its own name resolving to this node) cannot reach the admin API.
   * @default []
   */
  allowedHosts?: readonly string[];
  /** Called for each refused request (for a metric). */
  onRefused?: (reason: AdminRefusal) => void;
}

/**
 * Checks an admin request; answers it (403/401) and returns false when refused. A `node:http` request guard with no
 * dependency on the node or the process, so it can serve any operator HTTP surface.
 */
export type AdminAccess = (request: IncomingMessage, response: ServerResponse) => boolean;

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

function refuse(response: ServerResponse, status: 401 | 403, error: string): false {
  const headers: Record<string, string> = {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
  };
  if (status === 401) headers['www-authenticate'] = 'Bearer realm="matssocket-admin"';
  response.writeHead(status, headers).end(JSON.stringify({ error }));
  return false;
}

/**
 * Creates the admin guard: the `Host` header must name an allowed host (403 otherwise), then the bearer token must
 * match (401 otherwise). The tokens are compared as SHA-256 digests in constant time, so neither the content nor
 * the length of the expected token leaks through timing.
 * @throws RangeError when the token is too short or not visible ASCII.
 */
export function createAdminAccess(options: AdminAccessOptions): AdminAccess {
  if (!isValidAdminToken(options.token)) {
    throw new RangeError(
      `admin token must be at least ${MIN_ADMIN_TOKEN_LENGTH} visible ASCII characters without spaces`,
    );
  }
  const expected = digest(options.token);
  const hosts = new Set([...LOOPBACK_HOSTS, ...(options.allowedHosts ?? []).map((h) => h.toLowerCase())]);
  return (request, response) => {
    const host = hostNameOf(request.headers.host);
    if (host === undefined || !hosts.has(host)) {
      options.onRefused?.('host');
      return refuse(response, 403, 'host not allowed for the admin API');
    }
    const match = /^Bearer +(\S+) *$/i.exec(request.headers.authorization ?? '');
    if (!match) {
      options.onRefused?.('unauthenticated');
      return refuse(response, 401, 'admin API needs Authorization: Bearer <token>');
    }
    if (!timingSafeEqual(digest(match[1]!), expected)) {
      options.onRefused?.('bad_token');
      return refuse(response, 401, 'wrong admin token');
    }
    return true;
  };
}
