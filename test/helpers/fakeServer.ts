import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { encodeFrame } from '../../src/protocol/encodeFrame.ts';
import type { C2SEnvelope, S2CEnvelope } from '../../src/protocol/envelopes.ts';
import { parseClientFrame } from '../../src/protocol/parseClientFrame.ts';

/** What a waiter looks for among the received envelopes: a message type, or any predicate. */
export type EnvelopeMatch<T extends C2SEnvelope = C2SEnvelope> =
  T['t'] | ((envelope: C2SEnvelope) => boolean);

/** The envelope type(s) whose `t` can be `K` (C2SReply's `t` is 'RESOLVE' | 'REJECT'). */
type EnvelopeOfType<K extends C2SEnvelope['t']> = C2SEnvelope extends infer E
  ? E extends { t: infer T }
    ? K extends T
      ? E
      : never
    : never
  : never;

interface Waiter {
  check(): boolean;
}

/** Rejects after `timeoutMs` unless `register` settles first; the timer never outlives the wait. */
function bounded<T>(
  timeoutMs: number,
  what: string,
  register: (resolve: (value: T) => void, cancel: (cleanup: () => void) => void) => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let cleanup = (): void => {};
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    register(
      (value) => {
        clearTimeout(timer);
        cleanup();
        resolve(value);
      },
      (fn) => {
        cleanup = fn;
      },
    );
  });
}

/**
 * One client connection on the {@link FakeServer}. Every text frame is parsed with the server's strict
 * `parseClientFrame`, so a client that breaks a protocol rule fails the test (the frame lands in
 * `protocolErrors` and the connection is closed with 4004, as the real server would).
 */
export class FakeConnection {
  readonly socket: WebSocket;
  /** The path and query string of the handshake request. */
  readonly requestUrl: string;
  /** Every frame received, in order. */
  readonly frames: C2SEnvelope[][] = [];
  /** Frames the strict parser rejected. */
  readonly protocolErrors: unknown[] = [];
  /** Resolves with the close code and reason once the connection is closed (by either side). */
  readonly closed: Promise<{ code: number; reason: string }>;
  private readonly taken = new Set<C2SEnvelope>();
  private frameCursor = 0;
  private waiters = new Set<Waiter>();
  private isClosed = false;
  private helloSeen = false;

  constructor(socket: WebSocket, requestUrl = '') {
    this.socket = socket;
    this.requestUrl = requestUrl;
    this.closed = new Promise((resolve) => {
      socket.on('close', (code, reason) => {
        this.isClosed = true;
        resolve({ code, reason: reason.toString() });
        this.notify();
      });
    });
    socket.on('message', (data, isBinary) => {
      const buffer = Array.isArray(data)
        ? Buffer.concat(data)
        : Buffer.isBuffer(data)
          ? data
          : Buffer.from(data);
      const text = isBinary ? '' : buffer.toString('utf8');
      try {
        const frame = parseClientFrame(text);
        this.frames.push(frame);
        // Section 4: HELLO comes first; anything but HELLO before it is a protocol error (AUTH may precede it).
        const beforeHello = this.helloSeen
          ? []
          : frame.slice(
              0,
              Math.max(
                0,
                frame.findIndex((e) => e.t === 'HELLO'),
              ),
            );
        const early = (this.helloSeen || frame.some((e) => e.t === 'HELLO') ? beforeHello : frame).filter(
          (e) => e.t !== 'AUTH',
        );
        if (frame.some((e) => e.t === 'HELLO')) this.helloSeen = true;
        if (early.length > 0) throw new Error(`${early.map((e) => e.t).join(', ')} before HELLO`);
      } catch (error) {
        this.protocolErrors.push(error);
        socket.close(4004, 'protocol error');
      }
      this.notify();
    });
  }

  /** All envelopes received so far, in order. */
  get envelopes(): C2SEnvelope[] {
    return this.frames.flat();
  }

  /** Envelopes of one type received so far. */
  all<K extends C2SEnvelope['t']>(t: K): EnvelopeOfType<K>[] {
    return this.envelopes.filter((e): e is EnvelopeOfType<K> => e.t === t);
  }

  /** The frame that carried `envelope` (an object returned by `next()`). */
  frameOf(envelope: C2SEnvelope): C2SEnvelope[] {
    const frame = this.frames.find((f) => f.includes(envelope));
    if (!frame) throw new Error(`no frame holds ${JSON.stringify(envelope)}`);
    return frame;
  }

  /** The next frame not yet returned by this method. */
  nextFrame(timeoutMs = 2000): Promise<C2SEnvelope[]> {
    return this.waitFor(timeoutMs, 'a frame', () => {
      const frame = this.frames[this.frameCursor];
      if (frame) this.frameCursor++;
      return frame;
    });
  }

  /**
   * The first envelope matching `match` that no earlier `next()` call took. Envelopes it skips stay available,
   * so tests can wait for the one they care about while ACK2s and the like come and go.
   */
  next<K extends C2SEnvelope['t']>(match: K, timeoutMs?: number): Promise<EnvelopeOfType<K>>;
  next(match: (envelope: C2SEnvelope) => boolean, timeoutMs?: number): Promise<C2SEnvelope>;
  next(match: EnvelopeMatch, timeoutMs = 2000): Promise<C2SEnvelope> {
    const matches = typeof match === 'string' ? (e: C2SEnvelope) => e.t === match : match;
    return this.waitFor(timeoutMs, `an envelope matching ${String(match)}`, () => {
      const found = this.envelopes.find((e) => !this.taken.has(e) && matches(e));
      if (found) this.taken.add(found);
      return found;
    });
  }

  /** Expects HELLO and answers WELCOME with `sid` (and `desc`). Returns the HELLO. */
  async welcome(sid: string, desc?: string): Promise<EnvelopeOfType<'HELLO'>> {
    const hello = await this.next('HELLO');
    this.send(desc === undefined ? { t: 'WELCOME', sid } : { t: 'WELCOME', sid, desc });
    return hello;
  }

  /** Sends the envelopes as one frame. */
  send(...envelopes: S2CEnvelope[]): void {
    this.socket.send(encodeFrame(envelopes));
  }

  sendRaw(text: string): void {
    this.socket.send(text);
  }

  /** Closes with a close frame and waits until the connection is closed. */
  async close(code: number, reason = ''): Promise<void> {
    this.socket.close(code, reason);
    await this.closed;
  }

  /** Drops the TCP connection without a close frame (the client sees 1006). */
  async terminate(): Promise<void> {
    this.socket.terminate();
    await this.closed;
  }

  /** Waits for the connection to be closed by the client. */
  waitClosed(timeoutMs = 2000): Promise<{ code: number; reason: string }> {
    return bounded(timeoutMs, 'the connection to close', (resolve) => void this.closed.then(resolve));
  }

  private waitFor<T>(timeoutMs: number, what: string, poll: () => T | undefined): Promise<T> {
    return bounded<T>(timeoutMs, what, (resolve, cancel) => {
      const waiter: Waiter = {
        check: () => {
          const value = poll();
          if (value === undefined) return false;
          resolve(value);
          return true;
        },
      };
      if (waiter.check()) return;
      this.waiters.add(waiter);
      cancel(() => this.waiters.delete(waiter));
    }).catch((error: Error) => {
      throw this.isClosed ? new Error(`${error.message} (the connection is closed)`) : error;
    });
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) if (waiter.check()) this.waiters.delete(waiter);
  }
}

/** Options of {@link FakeServer.start}. */
export interface FakeServerOptions {
  /** Select the `matssocket` subprotocol in the handshake, as a MatsSocket server must. @default true */
  selectSubprotocol?: boolean;
}

/**
 * A scripted MatsSocket server for client tests: a raw `ws` WebSocketServer on 127.0.0.1, port 0. It speaks no
 * protocol by itself; tests read the client's frames and answer with the message sequences of docs/protocol.md §8.
 */
export class FakeServer {
  readonly url: string;
  readonly port: number;
  /** Every connection accepted, in order. */
  readonly connections: FakeConnection[] = [];
  private readonly wss: WebSocketServer;
  private connectionCursor = 0;
  private readonly listeners = new Set<() => void>();
  private closing: Promise<void> | undefined;

  private constructor(wss: WebSocketServer) {
    this.wss = wss;
    this.port = (wss.address() as AddressInfo).port;
    this.url = `ws://127.0.0.1:${this.port}/matssocket`;
    wss.on('connection', (socket, request) => {
      this.connections.push(new FakeConnection(socket, request.url));
      for (const listener of [...this.listeners]) listener();
    });
  }

  static async start(options: FakeServerOptions = {}): Promise<FakeServer> {
    const select = options.selectSubprotocol ?? true;
    const wss = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      handleProtocols: (protocols) => (select && protocols.has('matssocket') ? 'matssocket' : false),
    });
    await new Promise<void>((resolve, reject) => {
      wss.once('listening', resolve);
      wss.once('error', reject);
    });
    return new FakeServer(wss);
  }

  /** The next connection not yet returned by this method. */
  nextConnection(timeoutMs = 2000): Promise<FakeConnection> {
    return bounded(timeoutMs, 'a connection', (resolve, cancel) => {
      const check = (): void => {
        const connection = this.connections[this.connectionCursor];
        if (!connection) return;
        this.connectionCursor++;
        this.listeners.delete(check);
        resolve(connection);
      };
      this.listeners.add(check);
      cancel(() => this.listeners.delete(check));
      check();
    });
  }

  /** Drops every connection and stops listening. Idempotent. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      for (const client of this.wss.clients) client.terminate();
      this.wss.close(() => resolve());
    });
    return this.closing;
  }
}
