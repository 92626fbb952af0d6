import type { IncomingMessage, ServerResponse } from 'node:http';
import { createBearerCheck, type AccessRefusal } from './bearerCheck.ts';

/** Options of {@link createAdminAccess}. */
export interface AdminAccessOptions {
  /** The admin token: `Authorization: Bearer <token>`, at least 16 visible ASCII characters. */
  token: string;
  /**
   * Host names (no port; IPv6 in brackets) accepted in the `Host` header besides `localhost`, `127.0.0.1` and
   * `[::1]`. Others get 403, so a DNS-rebinding page (its own name resolving to this node) cannot reach the admin API.
   * @default []
   */
  allowedHosts?: readonly string[] | undefined;
  /** Called for each refused request (for a metric). */
  onRefused?: ((reason: AccessRefusal) => void) | undefined;
}

/**
 * Checks an admin request; answers it (403/401) and returns false when refused. A `node:http` request guard with no
 * dependency on the node or the process, so it can serve any operator HTTP surface.
 */
export type AdminAccess = (request: IncomingMessage, response: ServerResponse) => boolean;

function refuse(response: ServerResponse, status: 401 | 403, error: string): false {
  const headers: Record<string, string> = {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
  };
  if (status === 401) headers['www-authenticate'] = 'Bearer realm="matssocket-admin"';
  response.writeHead(status, headers).end(JSON.stringify({ error }));
  return false;
}

const REFUSALS: Record<AccessRefusal, [401 | 403, string]> = {
  host: [403, 'host not allowed for the admin API'],
  unauthenticated: [401, 'admin API needs Authorization: Bearer <token>'],
  bad_token: [401, 'wrong admin token'],
};

/**
 * Creates the admin guard (docs/security.md, "The admin surface"): the `Host` header must name an allowed host (403
 * otherwise), then the bearer token must match, compared in constant time (401 otherwise).
 * @throws RangeError when the token is too short or not visible ASCII.
 */
export function createAdminAccess(options: AdminAccessOptions): AdminAccess {
  const check = createBearerCheck({
    token: options.token,
    allowedHosts: options.allowedHosts ?? [],
    onRefused: options.onRefused,
  });
  return (request, response) => {
    const refusal = check(request);
    if (refusal === undefined) return true;
    const [status, error] = REFUSALS[refusal];
    return refuse(response, status, error);
  };
}
