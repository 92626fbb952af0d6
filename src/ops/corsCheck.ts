import type { IncomingMessage, ServerResponse } from 'node:http';
import { writeText } from './writeJson.ts';

/**
 * Checks a browser request's `Origin`: returns false after answering 403 for a refused origin; otherwise adds the
 * CORS headers for an allowed one (none for a request without `Origin`, i.e. not from a browser page) and returns true.
 */
export type CorsCheck = (request: IncomingMessage, response: ServerResponse) => boolean;

/** Options of {@link createCorsCheck}. */
export interface CorsCheckOptions {
  /** Origins (`https://app.example`, compared exactly) or patterns a page may call from. */
  allowedOrigins: readonly (string | RegExp)[];
  /** Request headers a preflight may ask for. @default ['authorization'] */
  allowedHeaders?: readonly string[] | undefined;
}

/**
 * A CORS check for the side channels browsers call (preconnect, `close_session`): credentials allowed (the
 * preconnect's point is its cookie), the origin echoed back, never `*`.
 */
export function createCorsCheck(options: CorsCheckOptions): CorsCheck {
  const exact = new Set(options.allowedOrigins.filter((o): o is string => typeof o === 'string'));
  const patterns = options.allowedOrigins.filter((o): o is RegExp => o instanceof RegExp);
  const allowHeaders = (options.allowedHeaders ?? ['authorization']).join(', ');
  return (request, response) => {
    const origin = request.headers.origin;
    if (origin === undefined) return true;
    if (!exact.has(origin) && !patterns.some((p) => p.test(origin))) {
      writeText(response, 403, 'Forbidden origin');
      return false;
    }
    response.setHeader('Access-Control-Allow-Origin', origin);
    response.setHeader('Vary', 'Origin');
    response.setHeader('Access-Control-Allow-Credentials', 'true');
    response.setHeader('Access-Control-Allow-Headers', allowHeaders);
    return true;
  };
}

/** Lets every request through without CORS headers (the default of the side channels). */
export const noCorsCheck: CorsCheck = () => true;
