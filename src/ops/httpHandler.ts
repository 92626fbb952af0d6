import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * A plain `node:http` request handler that answers only the requests it is for: it returns (or resolves to) true
 * when it answered, false when the request is not one of its routes (the caller goes on: the next handler, or 404).
 * It mounts in `http.createServer`, and with a one-line wrapper in Express or Fastify (docs/operations.md §5).
 */
export type HttpHandler = (request: IncomingMessage, response: ServerResponse) => boolean | Promise<boolean>;

/** One handler trying `handlers` in order; the first that answers ends the chain. */
export function chainHttpHandlers(handlers: readonly HttpHandler[]): HttpHandler {
  const list = [...handlers];
  return async (request, response) => {
    for (const handler of list) {
      if (await handler(request, response)) return true;
      // A handler that wrote and still said false has answered anyway; another must not write again.
      if (response.headersSent) return true;
    }
    return false;
  };
}

/** The path of a request (no query string); `/` for a missing or unparsable URL. */
export function requestPath(request: IncomingMessage): string {
  return requestUrl(request).pathname;
}

/** The request's URL, parsed against a dummy origin (only path and query are meaningful). */
export function requestUrl(request: IncomingMessage): URL {
  try {
    return new URL(request.url ?? '/', 'http://localhost');
  } catch {
    return new URL('http://localhost/');
  }
}
