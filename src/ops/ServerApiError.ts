/**
 * The `error.code` values of the server API's JSON errors (docs/operations.md §6.3), with their HTTP status. Stable:
 * clients branch on the code, never on the message.
 */
export const ServerApiErrorCode = {
  /** 400: the body is not JSON. */
  INVALID_JSON: 'INVALID_JSON',
  /** 400: a field or query parameter is missing, of the wrong type, too long, or unknown. */
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  /** 401: no `Authorization: Bearer <key>`. */
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  /** 401: a key, but not the server API key. */
  INVALID_KEY: 'INVALID_KEY',
  /** 403: the `Host` header names a host not in `allowedHosts` (only when that option is set). */
  HOST_NOT_ALLOWED: 'HOST_NOT_ALLOWED',
  /** 404: no such route under the API's prefix. */
  NOT_FOUND: 'NOT_FOUND',
  /** 404: `send` to a session that does not exist (the message was dropped). */
  SESSION_NOT_FOUND: 'SESSION_NOT_FOUND',
  /** 405: the route exists for another method (see the `Allow` header). */
  METHOD_NOT_ALLOWED: 'METHOD_NOT_ALLOWED',
  /** 413: the body is larger than `maxBodyBytes`. */
  BODY_TOO_LARGE: 'BODY_TOO_LARGE',
  /** 415: a POST whose `content-type` is not `application/json`. */
  UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  /** 503: the node is stopping; call another node. */
  SERVER_STOPPED: 'SERVER_STOPPED',
  /** 503: the database or the broker is unreachable; retry later (`Retry-After` says when). */
  UNAVAILABLE: 'UNAVAILABLE',
  /** 500: anything else; the node logs it. */
  INTERNAL: 'INTERNAL',
} as const;

export type ServerApiErrorCode = (typeof ServerApiErrorCode)[keyof typeof ServerApiErrorCode];

const STATUS: Record<ServerApiErrorCode, number> = {
  INVALID_JSON: 400,
  INVALID_ARGUMENT: 400,
  UNAUTHENTICATED: 401,
  INVALID_KEY: 401,
  HOST_NOT_ALLOWED: 403,
  NOT_FOUND: 404,
  SESSION_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  BODY_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  SERVER_STOPPED: 503,
  UNAVAILABLE: 503,
  INTERNAL: 500,
};

/** The HTTP status of a server API error code. */
export function serverApiStatus(code: ServerApiErrorCode): number {
  return STATUS[code];
}

/** A server API request that ends in a JSON error `{ error: { code, message } }` with the code's status. */
export class ServerApiError extends Error {
  readonly code: ServerApiErrorCode;
  /** Extra response headers (`Allow`, `Retry-After`, `WWW-Authenticate`). */
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    code: ServerApiErrorCode,
    message: string,
    options: { cause?: unknown; headers?: Record<string, string> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ServerApiError';
    this.code = code;
    this.headers = options.headers ?? {};
  }

  get status(): number {
    return STATUS[this.code];
  }
}
