import type { MatsSocketServer } from '../server/MatsSocketServer.ts';
import { noCorsCheck, type CorsCheck } from './corsCheck.ts';
import { requestUrl, type HttpHandler } from './httpHandler.ts';
import { writeText } from './writeJson.ts';

/** Options of {@link createCloseSessionHandler}. */
export interface CloseSessionHandlerOptions {
  server: Pick<MatsSocketServer, 'closeSession'>;
  /** The WebSocket path; the handler answers `<path>/close_session`. @default '/matssocket' */
  path?: string | undefined;
  /** Origin policy for browsers (see `createCorsCheck`). @default every origin, no CORS headers */
  cors?: CorsCheck | undefined;
  /** The reason given to `closeSession`. @default 'Out-of-band close_session' */
  reason?: string | undefined;
}

/** Longest session id accepted, in characters (ours have 16; the reference's are similar). */
const MAX_SESSION_ID_LENGTH = 256;

/**
 * `POST <ws path>/close_session?session_id=<sid>`: the official clients' out-of-band close on `close()`
 * (docs/protocol.md §8.16), sent with `navigator.sendBeacon` as the page unloads. `closeSession` on this node,
 * which finds the session's node itself; 204, 400 without `session_id`, 405 for other methods, `OPTIONS` answered
 * as a preflight. Anyone who knows a session id can close that session, which is why ids are long and random.
 */
export function createCloseSessionHandler(options: CloseSessionHandlerOptions): HttpHandler {
  const target = `${options.path ?? '/matssocket'}/close_session`;
  const cors = options.cors ?? noCorsCheck;
  const reason = options.reason ?? 'Out-of-band close_session';
  return async (request, response) => {
    const url = requestUrl(request);
    if (url.pathname !== target) return false;
    if (request.method === 'OPTIONS') return cors(request, response) && writeText(response, 204);
    if (request.method !== 'POST') return writeText(response, 405, 'Method Not Allowed');
    if (!cors(request, response)) return true;
    request.resume();
    const sessionId = url.searchParams.get('session_id');
    if (!sessionId) return writeText(response, 400, 'Missing session_id');
    if (sessionId.length > MAX_SESSION_ID_LENGTH) return writeText(response, 400, 'session_id too long');
    await options.server.closeSession(sessionId, reason);
    return writeText(response, 204);
  };
}
