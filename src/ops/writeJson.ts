import type { ServerResponse } from 'node:http';

/**
 * Writes a JSON response (`application/json; charset=utf-8`, `cache-control: no-store`, since operator answers are
 * never to be cached by a proxy). Returns true, so a handler can `return writeJson(...)`.
 */
export function writeJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): true {
  const text = JSON.stringify(body);
  response
    .writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(text),
      'cache-control': 'no-store',
      ...headers,
    })
    .end(text);
  return true;
}

/** Writes a plain-text response (the side channels the official clients call answer in text). Returns true. */
export function writeText(response: ServerResponse, status: number, body = ''): true {
  response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' }).end(body);
  return true;
}
