import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { noCorsCheck, type CorsCheck } from './corsCheck.ts';
import { requestPath, type HttpHandler } from './httpHandler.ts';
import { writeText } from './writeJson.ts';

/** The cookie name the reference server's preconnect sets. */
export const DEFAULT_PRECONNECT_COOKIE = 'MatsSocketAuthCookie';

/** Options of {@link createPreconnectHandler}. */
export interface PreconnectHandlerOptions {
  /** The WebSocket path: the preconnect is a plain `GET` of it. @default '/matssocket' */
  path?: string | undefined;
  /** @default 'MatsSocketAuthCookie' */
  cookieName?: string | undefined;
  /** Lifetime of the cookie, in seconds: only until the WebSocket handshake that follows. @default 30 */
  maxAgeSeconds?: number | undefined;
  /**
   * Whether the `Authorization` value may be turned into a cookie; false → 401. Decide here what the handshake
   * would refuse anyway (a malformed or expired token), so the client learns it before it connects.
   * @default accept every value
   */
  authorize?: ((authorization: string, request: IncomingMessage) => boolean | Promise<boolean>) | undefined;
  /** Origin policy for browsers (see `createCorsCheck`); the preconnect sends `Authorization`, so a cross-origin
   * page needs a preflight that allows it. @default every origin, no CORS headers */
  cors?: CorsCheck | undefined;
}

/**
 * The preconnect operation (docs/compat-test-server.md §7.2): a browser cannot put an `Authorization` header on a
 * WebSocket handshake, so a client first `GET`s the WebSocket URL's HTTP form with the header; the answer is 204 with
 * `Set-Cookie: <name>=<base64 of the value, no padding>; Max-Age=30; HttpOnly` (plus `Secure` over TLS), and the
 * handshake that follows (`?preconnect=true`) carries the cookie, which the authentication plugin's
 * `checkHandshake` reads with {@link readPreconnectCookie}. No `Authorization` → 400; refused by `authorize` → 401.
 * `OPTIONS` is answered as a preflight. WebSocket upgrades never reach it (`node:http` routes them to `upgrade`).
 */
export function createPreconnectHandler(options: PreconnectHandlerOptions = {}): HttpHandler {
  const path = options.path ?? '/matssocket';
  const cookieName = options.cookieName ?? DEFAULT_PRECONNECT_COOKIE;
  const maxAge = options.maxAgeSeconds ?? 30;
  if (!/^[!#$%&'*+.^`|~\w-]+$/.test(cookieName)) throw new RangeError(`invalid cookie name '${cookieName}'`);
  if (!Number.isSafeInteger(maxAge) || maxAge < 1)
    throw new RangeError('maxAgeSeconds must be an integer >= 1');
  const cors = options.cors ?? noCorsCheck;
  return async (request, response) => {
    if (requestPath(request) !== path) return false;
    if (!cors(request, response)) return true;
    if (request.method === 'OPTIONS') return writeText(response, 204);
    if (request.method !== 'GET') return writeText(response, 405, 'Method Not Allowed');
    const authorization = request.headers.authorization;
    if (authorization === undefined) return writeText(response, 400, 'Missing Authorization header');
    if (options.authorize && !(await options.authorize(authorization, request))) {
      return writeText(response, 401, 'Unauthorized');
    }
    const value = Buffer.from(authorization, 'utf8').toString('base64').replace(/=+$/, '');
    const secure = (request.socket as Partial<TLSSocket>).encrypted === true ? '; Secure' : '';
    response.setHeader('Set-Cookie', `${cookieName}=${value}; Max-Age=${maxAge}; HttpOnly${secure}`);
    return writeText(response, 204);
  };
}

/**
 * The authorization value a preconnect cookie carries into a WebSocket handshake (`request` is the upgrade request
 * `checkHandshake` gets), decoded; undefined when the handshake has no such cookie.
 */
export function readPreconnectCookie(
  request: Pick<IncomingMessage, 'headers'>,
  cookieName: string = DEFAULT_PRECONNECT_COOKIE,
): string | undefined {
  const header = request.headers.cookie;
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== cookieName) continue;
    // Buffer accepts the standard alphabet with or without '=' padding.
    return Buffer.from(part.slice(eq + 1).trim(), 'base64').toString('utf8');
  }
  return undefined;
}
