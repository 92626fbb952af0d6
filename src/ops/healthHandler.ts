import { checkHealth, type HealthTargets } from './checkHealth.ts';
import { requestPath, type HttpHandler } from './httpHandler.ts';
import { writeJson } from './writeJson.ts';

/** Options of {@link createHealthHandler}. */
export interface HealthHandlerOptions extends HealthTargets {
  /** The liveness path: 200 whenever the process answers. @default '/health/live' */
  livePath?: string | undefined;
  /** The readiness path: 200 when the store and the broker are up, else 503 naming what is down. @default '/health/ready' */
  readyPath?: string | undefined;
  /**
   * Another path answering as readiness (the `npm start` node's `/health` predates the split); `false` for none.
   * @default '/health'
   */
  aliasPath?: string | false | undefined;
}

/**
 * Liveness and readiness probes (docs/operations.md §2), `GET` or `HEAD`:
 * - live: `200 {"status":"UP","node":…}` as long as the process answers HTTP; no I/O, so a slow database cannot make
 *   an orchestrator restart a node that would recover by itself;
 * - ready: the {@link checkHealth} report, 200 when UP, 503 when the store or the broker is down (`down` names
 *   which), so a load balancer sends no new clients to a node that cannot serve them.
 */
export function createHealthHandler(options: HealthHandlerOptions): HttpHandler {
  const livePath = options.livePath ?? '/health/live';
  const readyPaths = new Set([options.readyPath ?? '/health/ready']);
  if (options.aliasPath !== false) readyPaths.add(options.aliasPath ?? '/health');
  return async (request, response) => {
    const path = requestPath(request);
    if (path !== livePath && !readyPaths.has(path)) return false;
    const method = request.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') {
      return writeJson(
        response,
        405,
        { error: { code: 'METHOD_NOT_ALLOWED', message: 'use GET or HEAD' } },
        { allow: 'GET, HEAD' },
      );
    }
    if (path === livePath) return writeJson(response, 200, { status: 'UP', node: options.server.nodeName });
    const report = await checkHealth(options);
    return writeJson(response, report.status === 'UP' ? 200 : 503, report);
  };
}
