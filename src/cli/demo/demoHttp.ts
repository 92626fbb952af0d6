import { readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { ServerResponse } from 'node:http';
import { Counter, type Registry } from 'prom-client';
import { handleCloseSession, json } from '../compat/compatHttp.ts';
import type { AssembledNode, NodeHttpHandler } from '../NodeAssembly.ts';
import { createAdminAccess } from '../adminAccess.ts';
import { createAdminApiHandler, type AdminApiHandler } from './adminApi.ts';
import { BUNDLE_FILE } from './browserBundle.ts';
import { checkHealth } from './health.ts';

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
  /** The admin API's bearer token (see `createAdminAccess`). */
  adminToken: string;
  /** Host names the admin API accepts in `Host` besides the loopback names. @default [] */
  adminAllowedHosts?: readonly string[];
}

/**
 * The demo node's HTTP routes: the demo page (`/`), the admin page (`/admin`), their scripts and styles, the client
 * bundle, `/metrics` (Prometheus text), `/health` (JSON, 503 when the store or the broker is down), the admin JSON
 * API (`/api/...`, bearer token and Host check) and the clients' out-of-band `close_session`. Refused admin requests
 * count in `matssocket_admin_requests_refused_total{reason}`.
 */
export function createDemoHttpHandler(options: DemoHttpOptions): NodeHttpHandler {
  const wsPath = options.path ?? '/matssocket';
  const refused = new Counter({
    name: 'matssocket_admin_requests_refused_total',
    help: 'Admin API requests refused: reason host (Host header not allowed), unauthenticated, bad_token',
    labelNames: ['reason'],
    registers: [options.registry],
  });
  const access = createAdminAccess({
    token: options.adminToken,
    allowedHosts: options.adminAllowedHosts ?? [],
    onRefused: (reason) => refused.inc({ reason }),
  });
  const adminApis = new WeakMap<AssembledNode, AdminApiHandler>();
  const adminApiOf = (node: AssembledNode): AdminApiHandler => {
    let handler = adminApis.get(node);
    if (!handler) adminApis.set(node, (handler = createAdminApiHandler({ node, access })));
    return handler;
  };
  const files = new Map<string, string>([
    ['/', join(options.publicDir, 'index.html')],
    ['/index.html', join(options.publicDir, 'index.html')],
    ['/admin', join(options.publicDir, 'admin.html')],
    ['/admin.html', join(options.publicDir, 'admin.html')],
    ['/demo.js', join(options.publicDir, 'demo.js')],
    ['/admin.js', join(options.publicDir, 'admin.js')],
    ['/style.css', join(options.publicDir, 'style.css')],
    [`/${BUNDLE_FILE}`, join(options.bundleDir, BUNDLE_FILE)],
    [`/${BUNDLE_FILE}.map`, join(options.bundleDir, `${BUNDLE_FILE}.map`)],
  ]);
  return async (node, request, response) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const method = request.method ?? 'GET';
    const file = files.get(url.pathname);
    if (file && (method === 'GET' || method === 'HEAD')) return serveFile(response, file, method === 'HEAD');
    if (method === 'GET' && url.pathname === '/metrics') {
      const text = await options.registry.metrics();
      response.writeHead(200, { 'content-type': options.registry.contentType }).end(text);
      return true;
    }
    if (method === 'GET' && url.pathname === '/health') {
      const report = await checkHealth(node);
      return json(response, report.status === 'UP' ? 200 : 503, report);
    }
    if (await adminApiOf(node)(request, response)) return true;
    return handleCloseSession(node, request, response, url, wsPath);
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
