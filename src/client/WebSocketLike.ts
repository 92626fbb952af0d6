/**
 * The part of the WHATWG WebSocket API the client uses. Browsers' `WebSocket` and the `ws` package's `WebSocket`
 * both fit, so the client runs in browsers and in Node without importing either.
 */

/**
 * A handler type whose parameter is checked bivariantly (method syntax), so a `ws` or DOM WebSocket, whose
 * handlers take richer event types, is assignable to {@link WebSocketLike}.
 */
type Handler<E> = { bivarianceHack(event: E): void }['bivarianceHack'];

/** The fields of a WebSocket `message` event the client reads. Text frames carry a string. */
export interface WebSocketMessageEventLike {
  data: unknown;
}

/** The fields of a WebSocket `close` event the client reads. */
export interface WebSocketCloseEventLike {
  code: number;
  reason: string;
}

export interface WebSocketLike {
  /** 0 CONNECTING, 1 OPEN, 2 CLOSING, 3 CLOSED. */
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: Handler<unknown> | null;
  onmessage: Handler<WebSocketMessageEventLike> | null;
  onclose: Handler<WebSocketCloseEventLike> | null;
  onerror: Handler<unknown> | null;
}

/** A WebSocket constructor: `globalThis.WebSocket` in browsers, `WebSocket` from `ws` in Node. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** The WebSocket subprotocol every MatsSocket server selects (docs/protocol.md section 2.1). */
export const MATSSOCKET_SUBPROTOCOL = 'matssocket';

/** The readyState of an open WebSocket. */
export const WEBSOCKET_OPEN = 1;

/**
 * Replaces all four handlers with no-ops. `ws` throws an unhandled 'error' event when no listener is attached,
 * so an abandoned socket gets no-op handlers instead of `null`.
 */
export function detachHandlers(socket: WebSocketLike): void {
  const noop = (): void => {};
  socket.onopen = noop;
  socket.onmessage = noop;
  socket.onclose = noop;
  socket.onerror = noop;
}
