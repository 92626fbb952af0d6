import type { IncomingMessage } from 'node:http';
import { ConfigError, DataAccessError, ErrorCode, MatsSocketServerError, TransportError } from '../errors.ts';
import { silentLogger, type Logger } from '../logging.ts';
import { noopMetrics, type Metrics } from '../metrics/Metrics.ts';
import type { MatsSocketServer } from '../server/MatsSocketServer.ts';
import { randomId } from '../util/ids.ts';
import { createBearerCheck, isValidBearerToken, type AccessRefusal } from './bearerCheck.ts';
import { requestUrl, type HttpHandler } from './httpHandler.ts';
import { readJsonBody, RequestBodyError } from './readJsonBody.ts';
import { ServerApiError } from './ServerApiError.ts';
import {
  parseCloseSessionRequest,
  parsePublishRequest,
  parseSendRequest,
  parseSendToUserRequest,
  parseSessionsQuery,
  type ServerApiLimits,
} from './serverApiRequests.ts';
import { sessionSummaryOf, type SessionSummary } from './sessionSummary.ts';
import { writeJson } from './writeJson.ts';

/** The server methods the server API calls: the same operations as the library's. */
export type ServerApiTarget = Pick<
  MatsSocketServer,
  'publish' | 'send' | 'closeSession' | 'getSessions' | 'getSessionsCount'
>;

/** Options of {@link createServerApiHandler}. */
export interface ServerApiOptions {
  server: ServerApiTarget;
  /**
   * The key callers send as `Authorization: Bearer <key>` (16+ visible ASCII characters). Keep it apart from the
   * admin token: a backend that may push to clients need not be able to requeue or purge dead letters.
   */
  apiKey: string;
  /** Where the routes live. @default '/api/server' */
  prefix?: string | undefined;
  /**
   * Host names accepted in the `Host` header besides the loopback names (403 otherwise). Backends call by whatever
   * name the network gives the node, so there is no Host check unless this is set.
   * @default undefined (no Host check)
   */
  allowedHosts?: readonly string[] | undefined;
  /** Largest request body, in bytes; larger → 413. @default 1048576 (1 MiB) */
  maxBodyBytes?: number | undefined;
  /** Bounds of ids, trace ids, messages and pages. @default see {@link DEFAULT_SERVER_API_LIMITS} */
  limits?: Partial<ServerApiLimits> | undefined;
  /** Where the request and refusal counters go. @default noopMetrics */
  metrics?: Metrics | undefined;
  /** Failures answered with 500 are logged here. @default silentLogger */
  logger?: Logger | undefined;
}

/** The defaults of {@link ServerApiOptions.limits}; they match the server's own limits for clients. */
export const DEFAULT_SERVER_API_LIMITS: Readonly<ServerApiLimits> = {
  maxIdLength: 256,
  maxTraceIdLength: 1024,
  maxMessageDepth: 1000,
  maxReasonLength: 1024,
  maxPageSize: 1000,
  maxOffset: 10_000,
};

/** A session as `GET sessions` lists it. */
export type ServerApiSession = SessionSummary;

type Operation = 'publish' | 'send' | 'send_to_user' | 'close_session' | 'sessions';

interface Route {
  operation: Operation;
  method: 'GET' | 'POST';
  run(ctx: RouteContext, body: unknown, query: URLSearchParams): Promise<unknown>;
}

interface RouteContext {
  server: ServerApiTarget;
  limits: ServerApiLimits;
}

/** Sessions fetched per page while sending to every session of a user. */
const USER_SESSIONS_PAGE = 500;

const traceIdFor = (operation: Operation, given: string | undefined): string =>
  given ?? `MatsSocket.serverApi.${operation}[${randomId(12)}]`;

const ROUTES: ReadonlyMap<string, Route> = new Map<string, Route>([
  [
    '/publish',
    {
      operation: 'publish',
      method: 'POST',
      async run({ server, limits }, body) {
        const r = parsePublishRequest(body, limits);
        await server.publish(traceIdFor('publish', r.traceId), r.topicId, r.message);
        return { ok: true };
      },
    },
  ],
  [
    '/send',
    {
      operation: 'send',
      method: 'POST',
      async run({ server, limits }, body) {
        const r = parseSendRequest(body, limits);
        const sent = await server.send(r.sessionId, traceIdFor('send', r.traceId), r.terminatorId, r.message);
        if (!sent) throw new ServerApiError('SESSION_NOT_FOUND', `no session '${r.sessionId}'`);
        return { ok: true };
      },
    },
  ],
  [
    '/send-to-user',
    {
      operation: 'send_to_user',
      method: 'POST',
      async run({ server, limits }, body) {
        const r = parseSendToUserRequest(body, limits);
        const traceId = traceIdFor('send_to_user', r.traceId);
        let sent = 0;
        let after: string | undefined;
        for (;;) {
          const page = await server.getSessions({
            userId: r.userId,
            limit: USER_SESSIONS_PAGE,
            ...(after !== undefined ? { afterSessionId: after } : {}),
          });
          const results = await Promise.all(
            page.map((s) => server.send(s.id, traceId, r.terminatorId, r.message)),
          );
          sent += results.filter(Boolean).length;
          if (page.length < USER_SESSIONS_PAGE) break;
          after = page[page.length - 1]!.id;
        }
        return { ok: true, sent };
      },
    },
  ],
  [
    '/close-session',
    {
      operation: 'close_session',
      method: 'POST',
      async run({ server, limits }, body) {
        const r = parseCloseSessionRequest(body, limits);
        await server.closeSession(r.sessionId, r.reason ?? 'Closed through the server API');
        return { ok: true };
      },
    },
  ],
  [
    '/sessions',
    {
      operation: 'sessions',
      method: 'GET',
      async run({ server, limits }, _body, query) {
        const q = parseSessionsQuery(query, limits);
        const filter = q.userId !== undefined ? { userId: q.userId } : {};
        const [rows, total] = await Promise.all([
          q.after !== undefined
            ? server.getSessions({ ...filter, afterSessionId: q.after, limit: q.limit })
            : server.getSessions({ ...filter, limit: q.offset + q.limit }).then((all) => all.slice(q.offset)),
          server.getSessionsCount(filter),
        ]);
        const sessions: ServerApiSession[] = rows.map(sessionSummaryOf);
        // The cursor of the next page (ids ascend); null when this page is the last.
        const next = sessions.length === q.limit ? sessions[sessions.length - 1]!.sessionId : null;
        return { sessions, total, next };
      },
    },
  ],
]);

const REFUSALS: Record<AccessRefusal, () => ServerApiError> = {
  host: () => new ServerApiError('HOST_NOT_ALLOWED', 'host not allowed for the server API'),
  unauthenticated: () =>
    new ServerApiError('UNAUTHENTICATED', 'the server API needs Authorization: Bearer <key>', {
      headers: { 'www-authenticate': 'Bearer realm="matssocket-server-api"' },
    }),
  bad_token: () =>
    new ServerApiError('INVALID_KEY', 'wrong server API key', {
      headers: { 'www-authenticate': 'Bearer realm="matssocket-server-api", error="invalid_token"' },
    }),
};

/**
 * The server API over HTTP (docs/operations.md §6): what the library's `MatsSocketServer` offers a Node backend,
 * for backends in any language, without RabbitMQ. JSON in and out; errors are `{"error": {"code", "message"}}`
 * ({@link ServerApiError} codes) with their status.
 * - `POST <prefix>/publish` `{topicId, message, traceId?}` → `{ok: true}`
 * - `POST <prefix>/send` `{sessionId, terminatorId, message, traceId?}` → `{ok: true}`, 404 `SESSION_NOT_FOUND`
 * - `POST <prefix>/send-to-user` `{userId, terminatorId, message, traceId?}` → `{ok: true, sent: <sessions>}`
 * - `POST <prefix>/close-session` `{sessionId, reason?}` → `{ok: true}` (also when there was no such session)
 * - `GET <prefix>/sessions?userId=&limit=&offset=|after=` → `{sessions, total, next}`
 *
 * Every request must carry the API key (checked before anything else; refusals counted in
 * `matssocket_server_api_requests_refused_total{reason}`); every answer counts in
 * `matssocket_server_api_requests_total{operation, status}`. Not under the prefix: false.
 * @throws ConfigError naming an invalid option.
 */
export function createServerApiHandler(options: ServerApiOptions): HttpHandler {
  const prefix = options.prefix ?? '/api/server';
  if (!/^\/[\w\-/.]*[^/]$/.test(prefix)) throw new ConfigError('prefix', `must be a path like '/api/server'`);
  if (!isValidBearerToken(options.apiKey)) {
    throw new ConfigError('apiKey', 'must be at least 16 visible ASCII characters without spaces');
  }
  const maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024;
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 1) {
    throw new ConfigError('maxBodyBytes', 'must be a positive integer');
  }
  const limits: ServerApiLimits = { ...DEFAULT_SERVER_API_LIMITS, ...options.limits };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 1)
      throw new ConfigError(`limits.${name}`, 'must be an integer >= 1');
  }
  const metrics = options.metrics ?? noopMetrics;
  const logger = options.logger ?? silentLogger;
  const refused = metrics.counter({
    name: 'matssocket_server_api_requests_refused_total',
    help: 'Server API requests refused: reason host (Host header not allowed), unauthenticated (no key), bad_token',
    labelNames: ['reason'],
  });
  const requests = metrics.counter({
    name: 'matssocket_server_api_requests_total',
    help: 'Server API requests answered, by operation and HTTP status',
    labelNames: ['operation', 'status'],
  });
  const check = createBearerCheck({
    token: options.apiKey,
    allowedHosts: options.allowedHosts,
    onRefused: (reason) => refused.inc({ reason }),
  });
  const ctx: RouteContext = { server: options.server, limits };

  return async (request, response) => {
    const url = requestUrl(request);
    if (url.pathname !== prefix && !url.pathname.startsWith(`${prefix}/`)) return false;
    const route = ROUTES.get(url.pathname.slice(prefix.length));
    let status: number;
    try {
      const refusal = check(request);
      if (refusal !== undefined) throw REFUSALS[refusal]();
      if (!route) throw new ServerApiError('NOT_FOUND', `no route ${url.pathname}`);
      if (request.method !== route.method) {
        throw new ServerApiError('METHOD_NOT_ALLOWED', `use ${route.method}`, {
          headers: { allow: route.method },
        });
      }
      const body = route.method === 'POST' ? await readBody(request, maxBodyBytes) : undefined;
      writeJson(response, 200, await route.run(ctx, body, url.searchParams));
      status = 200;
    } catch (err) {
      const apiError = toServerApiError(err);
      if (apiError.code === 'INTERNAL') {
        logger.error({ err, path: url.pathname }, 'server API request failed');
      }
      status = apiError.status;
      if (!response.headersSent) {
        writeJson(
          response,
          status,
          { error: { code: apiError.code, message: apiError.message } },
          apiError.headers,
        );
      }
    }
    requests.inc({ operation: route?.operation ?? 'unknown', status: String(status) });
    return true;
  };
}

async function readBody(request: IncomingMessage, maxBodyBytes: number): Promise<unknown> {
  const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') {
    throw new ServerApiError('UNSUPPORTED_MEDIA_TYPE', 'the body must be application/json');
  }
  try {
    return await readJsonBody(request, maxBodyBytes);
  } catch (err) {
    if (!(err instanceof RequestBodyError)) throw err;
    if (err.code === 'BODY_TOO_LARGE') {
      throw new ServerApiError('BODY_TOO_LARGE', err.message, { cause: err });
    }
    throw new ServerApiError('INVALID_JSON', err.message, { cause: err });
  }
}

/** What an exception means to an API caller; the message of an unexpected one stays in the log. */
function toServerApiError(err: unknown): ServerApiError {
  if (err instanceof ServerApiError) return err;
  if (err instanceof MatsSocketServerError) {
    if (err.code === ErrorCode.SERVER_STOPPED) {
      return new ServerApiError('SERVER_STOPPED', 'this node is stopping; call another', { cause: err });
    }
    if (err.code === ErrorCode.SERVER_ILLEGAL_CALL) {
      return new ServerApiError('INVALID_ARGUMENT', err.message, { cause: err });
    }
  }
  if (err instanceof DataAccessError || err instanceof TransportError) {
    return new ServerApiError('UNAVAILABLE', 'the database or the broker is unreachable; retry later', {
      cause: err,
      headers: { 'retry-after': '1' },
    });
  }
  return new ServerApiError('INTERNAL', 'internal error', { cause: err });
}
