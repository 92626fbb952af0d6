import { readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { promMetrics } from '../../metrics/promMetrics.ts';
import type { MetricsHistory } from '../../ops/MetricsHistory.ts';
import { createOpsHandler } from '../../ops/opsHandler.ts';
import { checkCors } from '../compat/compatHttp.ts';
import type { NodeHttpHandler } from '../NodeAssembly.ts';
import { perNodeHttpHandler } from '../perNodeHttpHandler.ts';
import { BUNDLE_FILE } from './browserBundle.ts';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

/** Options of {@link createDemoHttpHandler}. */
export interface DemoHttpOptions {
  /** Folder of the pages (`src/cli/demo/public`). */
  publicDir: string;
  /** Folder of the client bundle (`dist/browser`). */
  bundleDir: string;
  /** The registry `/metrics` exposes. */
  registry: Registry;
  /** The WebSocket path. @default '/matssocket' */
  path?: string;
  /** The admin API's bearer token (see `createAdminAccess` in src/ops). */
  adminToken: string;
  /** Host names the admin API and page accept in `Host` besides the loopback names. @default [] */
  adminAllowedHosts?: readonly string[];
  /** The node's sampled metrics, charted by the admin page. */
  metricsHistory?: MetricsHistory;
}

/**
 * The demo node's HTTP routes: the demo page (`/`), its script and style, the client bundle, and the operator surface
 * of src/ops (docs/operations.md): `/metrics`, `/health` with `/health/live` and `/health/ready`, the admin page
 * (`/admin`) and its JSON API (`/api/...`, bearer token and Host check; refusals count in
 * `matssocket_admin_requests_refused_total{reason}`) and the clients' out-of-band `close_session`.
 */
export function createDemoHttpHandler(options: DemoHttpOptions): NodeHttpHandler {
  const wsPath = options.path ?? '/matssocket';
  const metrics = promMetrics({ registry: options.registry });
  const ops = perNodeHttpHandler((node) =>
    createOpsHandler({
      server: node.server,
      store: node.store,
      transport: node.transport,
      registry: options.registry,
      metrics,
      adminToken: options.adminToken,
      allowedHosts: options.adminAllowedHosts ?? [],
      adminPage: true,
      metricsHistory: options.metricsHistory,
      webSocketPath: wsPath,
      cors: checkCors,
    }),
  );
  const files = new Map<string, string>([
    ['/', join(options.publicDir, 'index.html')],
    ['/index.html', join(options.publicDir, 'index.html')],
    ['/demo.js', join(options.publicDir, 'demo.js')],
    ['/style.css', join(options.publicDir, 'style.css')],
    [`/${BUNDLE_FILE}`, join(options.bundleDir, BUNDLE_FILE)],
    [`/${BUNDLE_FILE}.map`, join(options.bundleDir, `${BUNDLE_FILE}.map`)],
  ]);
  return async (node, request, response) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const method = request.method ?? 'GET';
    const file = files.get(url.pathname);
    if (file && (method === 'GET' || method === 'HEAD')) return serveFile(response, file, method === 'HEAD');
    return ops(node, request, response);
  };
}

async function serveFile(response: ServerResponse, path: string, headOnly: boolean): Promise<boolean> {
  let body: Buffer;
  try {
    body = await readFile(path);
  } catch {
    return false;
  }
  response.writeHead(200, {
    'content-type': CONTENT_TYPES[extname(path)] ?? 'application/octet-stream',
    'content-length': body.length,
    'cache-control': 'no-cache',
  });
  response.end(headOnly ? undefined : body);
  return true;
}
