import { ErrorCode, MatsSocketError } from '../errors.ts';

/** What a preconnect function gets, before each WebSocket connection attempt. */
export interface PreconnectInfo {
  /** The WebSocket URL about to be connected to (without `?preconnect=true`). */
  webSocketUrl: string;
  /** The current authorization value. */
  authorization: string;
  /** Aborted when the connection attempt times out or the client stops connecting. */
  signal: AbortSignal;
}

/**
 * The `preconnect` option: `false` (none), `true` (GET of the WebSocket URL's HTTP form), a URL to GET instead, or a
 * function that performs the operation and resolves when it succeeded (a rejection fails the attempt).
 */
export type PreconnectOption = boolean | string | ((info: PreconnectInfo) => Promise<unknown>);

/** The HTTP statuses that count as a successful default preconnect, as the official client. */
const GOOD_STATUSES = new Set([200, 202, 204]);

/** The part of `fetch` the default operation uses (browsers and Node 20 both have it). */
type FetchLike = (
  url: string,
  init: {
    method: string;
    headers: Record<string, string>;
    credentials: 'include';
    cache: 'no-store';
    signal: AbortSignal;
  },
) => Promise<{ status: number; body?: { cancel(): Promise<void> } | null }>;

/**
 * The preconnect failed (code `CLIENT_PRECONNECT_FAILED`): the attempt counts as a failed connection attempt. Reported
 * in an `error` event.
 */
export class PreconnectFailedError extends MatsSocketError {
  /** The HTTP status of the default operation, when it got one. */
  readonly status: number | undefined;

  constructor(message: string, status?: number, cause?: unknown) {
    super(ErrorCode.CLIENT_PRECONNECT_FAILED, message, cause === undefined ? undefined : { cause });
    this.status = status;
  }
}

/**
 * The WebSocket URL's HTTP form, replacing the first `ws` with `http` as the official clients do (`wss` → `https`).
 */
export function httpUrlOf(webSocketUrl: string): string {
  return webSocketUrl.replace('ws', 'http');
}

/** The URL the WebSocket connects to after a preconnect: the official clients add `?preconnect=true`. */
export function preconnectedWebSocketUrl(webSocketUrl: string): string {
  return `${webSocketUrl}${webSocketUrl.includes('?') ? '&' : '?'}preconnect=true`;
}

/**
 * Runs the preconnect operation of docs/protocol.md §2.1 for one connection attempt. The default operation GETs
 * the URL with `Authorization: <value>` and credentials included (so the `Set-Cookie` of the answer is kept for the
 * handshake, where browsers cannot add an `Authorization` header), and expects 200, 202 or 204.
 */
export async function runPreconnect(option: PreconnectOption, info: PreconnectInfo): Promise<void> {
  if (option === false) return;
  if (typeof option === 'function') {
    try {
      await option(info);
    } catch (error) {
      throw error instanceof PreconnectFailedError
        ? error
        : new PreconnectFailedError('the preconnect function failed', undefined, error);
    }
    return;
  }
  const fetchFn = (globalThis as { fetch?: FetchLike }).fetch;
  if (typeof fetchFn !== 'function') {
    throw new PreconnectFailedError('the preconnect needs fetch(), which this runtime lacks');
  }
  const url = typeof option === 'string' ? option : httpUrlOf(info.webSocketUrl);
  let response: Awaited<ReturnType<FetchLike>>;
  try {
    response = await fetchFn(url, {
      method: 'GET',
      headers: { Authorization: info.authorization },
      credentials: 'include',
      cache: 'no-store',
      signal: info.signal,
    });
  } catch (error) {
    throw new PreconnectFailedError(`the preconnect GET ${url} failed`, undefined, error);
  }
  await response.body?.cancel().catch(() => undefined);
  if (!GOOD_STATUSES.has(response.status)) {
    throw new PreconnectFailedError(
      `the preconnect GET ${url} answered HTTP ${response.status}`,
      response.status,
    );
  }
}
