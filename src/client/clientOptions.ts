import { ConfigError } from '../errors.ts';
import { silentLogger, type Logger } from '../logging.ts';
import type { BackoffOptions } from '../util/backoff.ts';
import type { ReceivedEvent } from './clientEvents.ts';
import type { PreconnectOption } from './preconnect.ts';
import type { WebSocketConstructor } from './WebSocketLike.ts';

/** Options of `send()`. */
export interface SendOptions {
  /** Debug options (`DebugOption` bits) for this message; overrides the client's `debug`. */
  debug?: number;
}

/** Options of `request()`. */
export interface RequestOptions extends SendOptions {
  /** Request timeout in ms, also sent to the server as `to`. @default the client's `requestTimeoutMs` (45000) */
  timeout?: number;
  /** Called when the server ACKs the request (or a reply arrives before the ACK). */
  ackCallback?: (event: ReceivedEvent) => void;
  /** Called when the server NACKs the request, or it times out or the session closes before the ACK. */
  nackCallback?: (event: ReceivedEvent) => void;
}

/** Options of `requestReplyTo()`. */
export interface RequestReplyToOptions extends SendOptions {
  /** Request timeout in ms, also sent to the server as `to`. @default the client's `requestTimeoutMs` (45000) */
  timeout?: number;
}

/**
 * Options of {@link MatsSocketClient}. Every timer is an option so tests can run at 10-50 ms; the defaults are the
 * official JavaScript client's (docs/protocol.md section 11), so the client looks the same on the wire.
 */
export interface MatsSocketClientOptions {
  /** AppName of the application, sent in HELLO (`an`). At most 255 characters. */
  appName: string;
  /** AppVersion of the application, sent in HELLO (`av`). At most 255 characters. */
  appVersion: string;
  /** One or several `ws://`/`wss://` URLs of MatsSocket servers, tried in turn (failover). */
  urls: string | readonly string[];
  /**
   * The WebSocket constructor. In Node 20 pass `WebSocket` from the `ws` package.
   * @default globalThis.WebSocket
   */
  webSocket?: WebSocketConstructor;
  /** Where the client logs. @default silentLogger */
  logger?: Logger;
  /**
   * Shuffle `urls` once at construction, so that many clients spread over the servers.
   * @default true
   */
  shuffleUrls?: boolean;
  /**
   * Default debug options (`DebugOption` bits) requested with every SEND/REQUEST; a request's `debug` overrides it.
   * @default 0
   */
  debug?: number;
  /** Default timeout of `request()`/`requestReplyTo()`, ms; sent as `to`. @default 45000 */
  requestTimeoutMs?: number;
  /**
   * How long `send()` waits for the server's ACK/NACK before it rejects with TIMEOUT, ms. A SEND still waiting in
   * the send queue then (disconnected, or held for authorization) is never sent. @default 45000
   */
  sendTimeoutMs?: number;
  /** Pipeline debounce: envelopes enqueued within this many ms go in one frame; `flush()` sends at once. @default 10 */
  pipelineDelayMs?: number;
  /**
   * The longest the debounce holds an envelope while more keep coming within `pipelineDelayMs`, ms; at least
   * `pipelineDelayMs`. @default 50, or `pipelineDelayMs` when that is larger
   */
  pipelineMaxDelayMs?: number;
  /** ACK/NACK batching delay, ms; pending ACKs also go with any other frame the client sends. @default 20 */
  ackDelayMs?: number;
  /** ACK2 batching delay, ms; pending ACK2s also go with any other frame the client sends. @default 50 */
  ack2DelayMs?: number;
  /** ACKs (and ACK2s) are sent at once when more than this many are pending. @default 10 */
  ackBatchMaxPending?: number;
  /** Lower bound of the random delay before the first PING after WELCOME, ms. @default 3000 */
  initialPingDelayMinMs?: number;
  /** Upper bound of the random delay before the first PING after WELCOME, ms. @default 7000 */
  initialPingDelayMaxMs?: number;
  /** Interval between PINGs, ms. @default 15000 */
  pingIntervalMs?: number;
  /** How many PingPongs `pings` keeps. @default 100 */
  pingHistorySize?: number;
  /**
   * A PING unanswered this long makes the client drop the connection (4002 RECONNECT) and reconnect, resuming the
   * session: the server, or the path to it, has gone silent. ms. @default 30000
   */
  pongTimeoutMs?: number;
  /** How many InitiationProcessedEvents `initiations` keeps. @default 10 */
  initiationHistorySize?: number;
  /** Lower bound of the random delay before reconnecting after a lost connection, ms. @default 250 */
  reconnectDelayMinMs?: number;
  /** Upper bound of the random delay before reconnecting after a lost connection, ms. @default 1000 */
  reconnectDelayMaxMs?: number;
  /**
   * A connection that stayed established this long counts as stable: the next loss reconnects after the short
   * random delay again. Losses in a row before that back off with `connectBackoff`. ms. @default 10000
   */
  stableConnectionMs?: number;
  /**
   * Back-off between failed connection attempts, after one quick round over all URLs (when there are several),
   * and between reconnects after connections lost in a row (see `stableConnectionMs`). Delays with the defaults: about 0.5, 1, 2, 4, 8, 15, 15, ... s, each ±20 %.
   * @default { initialMs: 500, factor: 2, maxMs: 15000, jitter: 0.2 }
   */
  connectBackoff?: BackoffOptions;
  /** Connection attempt timeout, first round, ms; doubles per round over the URLs. @default 500 */
  connectTimeoutBaseMs?: number;
  /** Upper bound of the connection attempt timeout, ms. @default 15000 */
  connectTimeoutMaxMs?: number;
  /** Lower bound of the connection attempt timeout, ms. @default 500 with several URLs, 5000 with one */
  connectTimeoutMinMs?: number;
  /**
   * Consecutive failed connection attempts before the client gives up and closes the session locally (1008).
   * @default 60 without a session, 5760 (about a day of 15 s attempts) when resuming one
   */
  maxConnectionAttempts?: number;
  /** RETRY back-off base, ms: attempt n waits `2^(n-2) × base + random(0..jitter)`. @default 500 */
  retryDelayBaseMs?: number;
  /** RETRY back-off random addition, ms. @default 1000 */
  retryDelayJitterMs?: number;
  /** Sends (first send, RETRYs and resends after reconnects) per message before it fails. @default 10 */
  maxSendAttempts?: number;
  /** How long `close()` waits for the WebSocket's close handshake before giving up on it, ms. @default 2000 */
  closeTimeoutMs?: number;
  /**
   * Out-of-band session close on `close()`, which works even when the WebSocket is already gone (docs/protocol.md
   * 8.16): `true` calls `navigator.sendBeacon('<ws url as http>/close_session?session_id=<sid>')` where that exists
   * (browsers; a no-op elsewhere), a function is called with the URL and session id instead, `false` disables it.
   * @default true
   */
  outOfBandClose?: boolean | ((info: OutOfBandCloseInfo) => void);
  /**
   * The preconnect operation (docs/protocol.md §2.1), done before each WebSocket connection attempt: a browser cannot
   * put an `Authorization` header on the WebSocket handshake, so an HTTP request with it comes first, and the
   * server answers with a cookie that the handshake then carries (`createPreconnectHandler` serves it). `true` GETs
   * the WebSocket URL's HTTP form (`ws` → `http`, `wss` → `https`) with `Authorization: <current value>` and
   * credentials included, through `fetch`, and expects 200, 202 or 204; a string GETs that URL instead; a function
   * does the operation itself (it gets the WebSocket URL, the authorization and an `AbortSignal`) and resolves when
   * it succeeded. The WebSocket URL then gets `?preconnect=true`. A failure or a timeout (the attempt's connect
   * timeout covers both steps) fails the attempt, as a refused connection does: the client tries the next URL and,
   * after `maxConnectionAttempts`, closes the session (1008).
   * @default false
   */
  preconnect?: PreconnectOption;
  /**
   * In browsers, close the session (as `close()` does: 4000, and the out-of-band close) when the page is unloaded
   * (`beforeunload` or `pagehide` on `window`), as the official client does. Registered while the client has a
   * session or is connecting to get one; never registered where there is no `window` (Node, web workers).
   * @default true
   */
  closeOnPageUnload?: boolean;
}

/** What an `outOfBandClose` function gets. */
export interface OutOfBandCloseInfo {
  /** The WebSocket URL of the session's last connection. */
  webSocketUrl: string;
  sessionId: string;
}

/** Fully resolved options. */
export interface ResolvedClientOptions {
  appName: string;
  appVersion: string;
  urls: readonly string[];
  webSocket: WebSocketConstructor;
  logger: Logger;
  debug: number;
  requestTimeoutMs: number;
  sendTimeoutMs: number;
  pipelineDelayMs: number;
  pipelineMaxDelayMs: number;
  ackDelayMs: number;
  ack2DelayMs: number;
  ackBatchMaxPending: number;
  initialPingDelayMinMs: number;
  initialPingDelayMaxMs: number;
  pingIntervalMs: number;
  pingHistorySize: number;
  pongTimeoutMs: number;
  initiationHistorySize: number;
  reconnectDelayMinMs: number;
  reconnectDelayMaxMs: number;
  stableConnectionMs: number;
  connectBackoff: Required<BackoffOptions>;
  connectTimeoutBaseMs: number;
  connectTimeoutMaxMs: number;
  connectTimeoutMinMs: number;
  maxConnectionAttempts: number | undefined;
  retryDelayBaseMs: number;
  retryDelayJitterMs: number;
  maxSendAttempts: number;
  closeTimeoutMs: number;
  outOfBandClose: boolean | ((info: OutOfBandCloseInfo) => void);
  preconnect: PreconnectOption;
  closeOnPageUnload: boolean;
}

function nonNegative(field: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw new ConfigError(field, `must be a finite number >= 0, was ${String(v)}`);
  }
  return v;
}

function positiveInteger(field: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < 1)
    throw new ConfigError(field, `must be an integer >= 1, was ${String(v)}`);
  return v;
}

function shortString(field: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0)
    throw new ConfigError(field, 'must be a non-empty string');
  if (value.length > 255) throw new ConfigError(field, 'must be at most 255 characters');
  return value;
}

function shuffled<T>(items: readonly T[]): T[] {
  const result = [...items];
  for (let i = result.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [result[i], result[j]] = [result[j]!, result[i]!];
  }
  return result;
}

/** Validates and fills in {@link MatsSocketClientOptions}; throws {@link ConfigError} naming the field. */
export function resolveClientOptions(options: MatsSocketClientOptions): ResolvedClientOptions {
  const appName = shortString('appName', options.appName);
  const appVersion = shortString('appVersion', options.appVersion);
  const urlList = typeof options.urls === 'string' ? [options.urls] : [...(options.urls ?? [])];
  if (urlList.length === 0) throw new ConfigError('urls', 'needs at least one URL');
  for (const url of urlList) {
    if (typeof url !== 'string' || !/^wss?:\/\/./i.test(url)) {
      throw new ConfigError('urls', `must be ws:// or wss:// URLs, got ${String(url)}`);
    }
  }
  const webSocket =
    options.webSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket ?? undefined;
  if (typeof webSocket !== 'function') {
    throw new ConfigError('webSocket', 'no WebSocket constructor given and globalThis.WebSocket is missing');
  }
  const debug = options.debug ?? 0;
  if (!Number.isSafeInteger(debug) || debug < 0)
    throw new ConfigError('debug', 'must be an integer bit field >= 0');

  const several = urlList.length > 1;
  const resolved: ResolvedClientOptions = {
    appName,
    appVersion,
    urls: options.shuffleUrls === false ? urlList : shuffled(urlList),
    webSocket,
    logger: options.logger ?? silentLogger,
    debug,
    requestTimeoutMs: nonNegative('requestTimeoutMs', options.requestTimeoutMs, 45_000),
    sendTimeoutMs: nonNegative('sendTimeoutMs', options.sendTimeoutMs, 45_000),
    pipelineDelayMs: nonNegative('pipelineDelayMs', options.pipelineDelayMs, 10),
    pipelineMaxDelayMs: nonNegative(
      'pipelineMaxDelayMs',
      options.pipelineMaxDelayMs,
      Math.max(50, options.pipelineDelayMs ?? 10),
    ),
    ackDelayMs: nonNegative('ackDelayMs', options.ackDelayMs, 20),
    ack2DelayMs: nonNegative('ack2DelayMs', options.ack2DelayMs, 50),
    ackBatchMaxPending: positiveInteger('ackBatchMaxPending', options.ackBatchMaxPending, 10),
    initialPingDelayMinMs: nonNegative('initialPingDelayMinMs', options.initialPingDelayMinMs, 3000),
    initialPingDelayMaxMs: nonNegative('initialPingDelayMaxMs', options.initialPingDelayMaxMs, 7000),
    pingIntervalMs: nonNegative('pingIntervalMs', options.pingIntervalMs, 15_000),
    pingHistorySize: positiveInteger('pingHistorySize', options.pingHistorySize, 100),
    pongTimeoutMs: nonNegative('pongTimeoutMs', options.pongTimeoutMs, 30_000),
    initiationHistorySize: nonNegative('initiationHistorySize', options.initiationHistorySize, 10),
    reconnectDelayMinMs: nonNegative('reconnectDelayMinMs', options.reconnectDelayMinMs, 250),
    reconnectDelayMaxMs: nonNegative('reconnectDelayMaxMs', options.reconnectDelayMaxMs, 1000),
    stableConnectionMs: nonNegative('stableConnectionMs', options.stableConnectionMs, 10_000),
    connectBackoff: {
      initialMs: nonNegative('connectBackoff.initialMs', options.connectBackoff?.initialMs, 500),
      factor: nonNegative('connectBackoff.factor', options.connectBackoff?.factor, 2),
      maxMs: nonNegative('connectBackoff.maxMs', options.connectBackoff?.maxMs, 15_000),
      jitter: nonNegative('connectBackoff.jitter', options.connectBackoff?.jitter, 0.2),
    },
    connectTimeoutBaseMs: nonNegative('connectTimeoutBaseMs', options.connectTimeoutBaseMs, 500),
    connectTimeoutMaxMs: nonNegative('connectTimeoutMaxMs', options.connectTimeoutMaxMs, 15_000),
    connectTimeoutMinMs: nonNegative(
      'connectTimeoutMinMs',
      options.connectTimeoutMinMs,
      several ? 500 : 5000,
    ),
    maxConnectionAttempts:
      options.maxConnectionAttempts === undefined
        ? undefined
        : positiveInteger('maxConnectionAttempts', options.maxConnectionAttempts, 1),
    retryDelayBaseMs: nonNegative('retryDelayBaseMs', options.retryDelayBaseMs, 500),
    retryDelayJitterMs: nonNegative('retryDelayJitterMs', options.retryDelayJitterMs, 1000),
    maxSendAttempts: positiveInteger('maxSendAttempts', options.maxSendAttempts, 10),
    closeTimeoutMs: nonNegative('closeTimeoutMs', options.closeTimeoutMs, 2000),
    outOfBandClose: options.outOfBandClose ?? true,
    preconnect: options.preconnect ?? false,
    closeOnPageUnload: options.closeOnPageUnload ?? true,
  };
  const preconnect = resolved.preconnect;
  if (
    typeof preconnect !== 'boolean' &&
    typeof preconnect !== 'function' &&
    !(typeof preconnect === 'string' && preconnect.length > 0)
  ) {
    throw new ConfigError('preconnect', 'must be a boolean, a non-empty URL string or a function');
  }
  if (typeof resolved.closeOnPageUnload !== 'boolean') {
    throw new ConfigError('closeOnPageUnload', 'must be a boolean');
  }
  if (typeof resolved.outOfBandClose !== 'boolean' && typeof resolved.outOfBandClose !== 'function') {
    throw new ConfigError('outOfBandClose', 'must be a boolean or a function');
  }
  if (resolved.pipelineMaxDelayMs < resolved.pipelineDelayMs) {
    throw new ConfigError('pipelineMaxDelayMs', 'must be >= pipelineDelayMs');
  }
  if (resolved.initialPingDelayMaxMs < resolved.initialPingDelayMinMs) {
    throw new ConfigError('initialPingDelayMaxMs', 'must be >= initialPingDelayMinMs');
  }
  if (resolved.reconnectDelayMaxMs < resolved.reconnectDelayMinMs) {
    throw new ConfigError('reconnectDelayMaxMs', 'must be >= reconnectDelayMinMs');
  }
  if (resolved.connectBackoff.jitter > 1) throw new ConfigError('connectBackoff.jitter', 'must be at most 1');
  return resolved;
}
