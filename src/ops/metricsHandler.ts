import { requestPath, type HttpHandler } from './httpHandler.ts';
import { writeJson } from './writeJson.ts';

/**
 * What the metrics handler needs of a prom-client `Registry` (so this module does not import prom-client; the
 * adapter `promMetrics` is the only file that does).
 */
export interface MetricsRegistry {
  /** The exposition text. */
  metrics(): Promise<string>;
  /** Its content type (`text/plain; version=0.0.4; charset=utf-8`, or OpenMetrics). */
  readonly contentType: string;
}

/** Options of {@link createMetricsHandler}. */
export interface MetricsHandlerOptions {
  /** The registry to expose (the one given to `promMetrics({ registry })`). */
  registry: MetricsRegistry;
  /** @default '/metrics' */
  path?: string | undefined;
}

/** `GET /metrics` (or `HEAD`): the registry in the Prometheus text format (docs/operations.md §3). */
export function createMetricsHandler(options: MetricsHandlerOptions): HttpHandler {
  const path = options.path ?? '/metrics';
  return async (request, response) => {
    if (requestPath(request) !== path) return false;
    const method = request.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') {
      return writeJson(
        response,
        405,
        { error: { code: 'METHOD_NOT_ALLOWED', message: 'use GET or HEAD' } },
        { allow: 'GET, HEAD' },
      );
    }
    const text = await options.registry.metrics();
    response.writeHead(200, {
      'content-type': options.registry.contentType,
      'content-length': Buffer.byteLength(text),
      'cache-control': 'no-store',
    });
    response.end(method === 'HEAD' ? undefined : text);
    return true;
  };
}
