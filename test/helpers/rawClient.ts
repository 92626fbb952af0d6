import WebSocket from 'ws';

/** A received envelope (loosely typed: tests inspect fields). */
export type Envelope = Record<string, unknown> & { t: string };

/** How a connection closed. */
export interface CloseInfo {
  code: number;
  reason: string;
}

/** A handshake the server refused (HTTP status instead of 101). */
export class HandshakeRefusedError extends Error {
  readonly status: number;
  constructor(status: number) {
    super(`WebSocket handshake refused with HTTP ${status}`);
    this.status = status;
  }
}

export interface RawClientOptions {
  /** Subprotocols to offer. @default ['matssocket'] */
  protocols?: string[];
  headers?: Record<string, string>;
  /** Offer permessage-deflate. @default true */
  perMessageDeflate?: boolean;
  /** Timeout of the connect, ms. @default 3000 */
  timeoutMs?: number;
  /** Answer WebSocket pings automatically (false simulates a dead client for BR-6). @default true */
  autoPong?: boolean;
}

/**
 * A raw `ws` client for wire tests: sends frames as given (objects, strings or binary), and awaits the next
 * envelope matching a predicate, or the close, with timeouts. Every received frame is kept in `frames`.
 */
export class RawClient {
  readonly ws: WebSocket;
  /** Every text frame received, parsed, in order. */
  readonly frames: Envelope[][] = [];
  /** The times (Date.now()) the frames arrived. */
  readonly frameTimes: number[] = [];
  readonly #unconsumed: Envelope[] = [];
  #waiters: (() => void)[] = [];
  #closed: CloseInfo | undefined;
  readonly #closedPromise: Promise<CloseInfo>;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      const text = (data as Buffer).toString('utf8');
      const frame = JSON.parse(text) as Envelope[];
      this.frames.push(frame);
      this.frameTimes.push(Date.now());
      this.#unconsumed.push(...frame);
      this.#wake();
    });
    this.#closedPromise = new Promise((resolve) => {
      ws.once('close', (code, reason) => {
        this.#closed = { code, reason: reason.toString('utf8') };
        resolve(this.#closed);
        this.#wake();
      });
    });
    ws.on('error', () => undefined);
  }

  /** Connects; rejects with {@link HandshakeRefusedError} when the server answers with an HTTP status. */
  static connect(url: string, options: RawClientOptions = {}): Promise<RawClient> {
    const ws = new WebSocket(url, options.protocols ?? ['matssocket'], {
      headers: options.headers ?? {},
      perMessageDeflate: options.perMessageDeflate ?? true,
      autoPong: options.autoPong ?? true,
    });
    const client = new RawClient(ws);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error(`connect to ${url} timed out`));
      }, options.timeoutMs ?? 3000);
      ws.once('open', () => {
        clearTimeout(timer);
        resolve(client);
      });
      ws.once('unexpected-response', (_req, res) => {
        clearTimeout(timer);
        ws.terminate();
        reject(new HandshakeRefusedError(res.statusCode ?? 0));
      });
      ws.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  get closeInfo(): CloseInfo | undefined {
    return this.#closed;
  }

  /** Sends envelopes as one frame (an array), or a raw string, or binary data. */
  send(frame: readonly object[] | string | Buffer): void {
    if (Buffer.isBuffer(frame)) this.ws.send(frame, { binary: true });
    else this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** The next envelope (in arrival order) that matches, consuming it. Rejects on timeout or close. */
  async next(predicate: (e: Envelope) => boolean = () => true, timeoutMs = 3000): Promise<Envelope> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.#unconsumed.findIndex(predicate);
      if (i >= 0) return this.#unconsumed.splice(i, 1)[0]!;
      if (this.#closed)
        throw new Error(`closed (${this.#closed.code} ${this.#closed.reason}) while waiting for an envelope`);
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `no matching envelope within ${timeoutMs} ms; unconsumed: ${JSON.stringify(this.#unconsumed)}`,
        );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The next envelope of type `t`. */
  nextOfType(t: string, timeoutMs = 3000): Promise<Envelope> {
    return this.next((e) => e.t === t, timeoutMs);
  }

  /** Envelopes received and not consumed yet. */
  get pending(): readonly Envelope[] {
    return this.#unconsumed;
  }

  /** Resolves with the close code and reason; rejects after the timeout. */
  async closed(timeoutMs = 3000): Promise<CloseInfo> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`not closed within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      return await Promise.race([this.#closedPromise, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends HELLO (plus `extra` envelopes in the same frame) and awaits WELCOME. */
  async hello(
    auth: string,
    options: { sid?: string; tid?: string; extra?: object[]; an?: string; av?: string } = {},
  ): Promise<Envelope> {
    const hello = {
      t: 'HELLO',
      clv: 'RawClient,1.0; User-Agent: mocha',
      an: options.an ?? 'TestApp',
      av: options.av ?? '1.0.0',
      auth,
      ...(options.sid !== undefined ? { sid: options.sid } : {}),
      ...(options.tid !== undefined ? { tid: options.tid } : {}),
    };
    this.send([hello, ...(options.extra ?? [])]);
    return this.nextOfType('WELCOME');
  }

  /** Closes (if open) and waits for the close. */
  async close(code = 1000, reason = ''): Promise<void> {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(code, reason);
    else if (this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
    await this.closed().catch(() => this.ws.terminate());
  }

  /** Drops the TCP connection without a close frame (the server sees 1006). */
  terminate(): void {
    this.ws.terminate();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}
