import { readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../errors.ts';
import { hostNameOf, LOOPBACK_HOSTS } from './bearerCheck.ts';
import { requestPath, type HttpHandler } from './httpHandler.ts';
import { writeJson } from './writeJson.ts';

/**
 * The page's files: next to this module, in `src/ops/admin/` (tsx) or `dist/src/ops/admin/` (the build copies
 * them: `npm run build:admin`).
 */
export const ADMIN_PAGE_DIR = fileURLToPath(new URL('./admin/', import.meta.url));

/** The page's files and their content types. */
export const ADMIN_PAGE_FILES = {
  'admin.html': 'text/html; charset=utf-8',
  'admin.js': 'text/javascript; charset=utf-8',
  'adminCharts.js': 'text/javascript; charset=utf-8',
  'adminDom.js': 'text/javascript; charset=utf-8',
  'admin.css': 'text/css; charset=utf-8',
} as const;

type PageFile = keyof typeof ADMIN_PAGE_FILES;

/**
 * The page runs only its own script and style and talks only to its own origin: an injected `<script>` or a
 * framing page gets nowhere.
 */
const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "base-uri 'self'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

/** Options of {@link createAdminPageHandler}. */
export interface AdminPageHandlerOptions {
  /** Where the page is served (`<path>`, `<path>/` and its files under `<path>/`). @default '/admin' */
  path?: string | undefined;
  /**
   * Host names accepted in `Host` besides the loopback names, as for the admin API (`createAdminAccess`): the page
   * is refused (403) where its API would be.
   * @default []
   */
  allowedHosts?: readonly string[] | undefined;
}

/**
 * The admin page (docs/operations.md §4): nodes, live charts of the node's metrics, sessions with search and paging,
 * dead letters with their details. Static files with no secret in them; the page asks for the admin token, keeps it
 * in `sessionStorage` and sends it as a bearer token to the admin API (`createAdminApiHandler`, mounted on the same
 * origin under `/api/`). `GET`/`HEAD` only; anything else under the path is not answered (false).
 * @throws ConfigError when `path` is not an absolute path without a trailing slash.
 */
export function createAdminPageHandler(options: AdminPageHandlerOptions = {}): HttpHandler {
  const path = options.path ?? '/admin';
  if (!/^(\/[A-Za-z0-9._~-]+)+$/.test(path)) {
    throw new ConfigError('adminPage.path', `must look like '/admin' (no trailing slash), got '${path}'`);
  }
  const hosts = new Set([...LOOPBACK_HOSTS, ...(options.allowedHosts ?? []).map((h) => h.toLowerCase())]);
  const routes = new Map<string, PageFile>([
    [path, 'admin.html'],
    [`${path}/`, 'admin.html'],
    ...Object.keys(ADMIN_PAGE_FILES).map((f): [string, PageFile] => [`${path}/${f}`, f as PageFile]),
  ]);
  const cache = new Map<PageFile, Buffer>();
  const load = async (file: PageFile): Promise<Buffer> => {
    let body = cache.get(file);
    if (!body) {
      body = await readFile(join(ADMIN_PAGE_DIR, file));
      // The files are written for '/admin'; the base element makes their relative references follow `path`.
      if (file === 'admin.html' && path !== '/admin') {
        body = Buffer.from(
          body.toString('utf8').replace('<base href="/admin/" />', `<base href="${path}/" />`),
        );
      }
      cache.set(file, body);
    }
    return body;
  };
  return async (request, response) => {
    const file = routes.get(requestPath(request));
    const method = request.method ?? 'GET';
    if (!file || (method !== 'GET' && method !== 'HEAD')) return false;
    const host = hostNameOf(request.headers.host);
    if (host === undefined || !hosts.has(host)) {
      return writeJson(response, 403, { error: 'host not allowed for the admin page' });
    }
    serve(response, ADMIN_PAGE_FILES[file], await load(file), method === 'HEAD');
    return true;
  };
}

function serve(response: ServerResponse, contentType: string, body: Buffer, headOnly: boolean): void {
  response.writeHead(200, {
    ...SECURITY_HEADERS,
    'content-type': contentType,
    'content-length': body.length,
  });
  response.end(headOnly ? undefined : body);
}
