import { expect } from 'chai';
import net from 'node:net';
import { WebSocket } from 'ws';
import type { MatsSocketClientEvents, MessageEvent } from '../../src/client/clientEvents.ts';
import type { MatsSocketClientOptions } from '../../src/client/clientOptions.ts';
import { MatsSocketClient } from '../../src/client/MatsSocketClient.ts';
import type { MatsSocketError } from '../../src/errors.ts';

/**
 * Client timings for tests against a real server: the protocol's batching delays stay at their defaults (they are
 * what the server is built for), everything that would take seconds is cut to tens of ms, PINGs are off unless a
 * test turns them on.
 */
export const fastClientTimings: Partial<MatsSocketClientOptions> = {
  shuffleUrls: false,
  initialPingDelayMinMs: 600_000,
  initialPingDelayMaxMs: 600_000,
  reconnectDelayMinMs: 20,
  reconnectDelayMaxMs: 40,
  connectTimeoutMinMs: 1000,
  connectTimeoutBaseMs: 1000,
  connectBackoff: { initialMs: 20, factor: 2, maxMs: 100, jitter: 0.2 },
  retryDelayBaseMs: 20,
  retryDelayJitterMs: 10,
  closeTimeoutMs: 1000,
  outOfBandClose: false,
};

/** Creates clients for one suite or test and closes them all in {@link closeAll}. */
export class ClientPool {
  readonly #clients: MatsSocketClient[] = [];

  /** A Node client (ws) with test timings and, unless `null`, the authorization set. */
  create(
    urls: string | readonly string[],
    authorization: string | null,
    overrides: Partial<MatsSocketClientOptions> = {},
  ): MatsSocketClient {
    const client = new MatsSocketClient({
      appName: 'ClientTest',
      appVersion: '1.0.0',
      urls,
      webSocket: WebSocket,
      ...fastClientTimings,
      ...overrides,
    });
    if (authorization !== null) client.setCurrentAuthorization(authorization);
    this.#clients.push(client);
    return client;
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.#clients.splice(0).map((c) => c.close('test over')));
  }
}

/** A pool closed after each test of the calling suite. */
export function useClientPool(): ClientPool {
  const pool = new ClientPool();
  afterEach(() => pool.closeAll());
  return pool;
}

/** Waits for the next client event of `name` matching `predicate`, bounded by `timeoutMs`. */
export function nextEvent<K extends keyof MatsSocketClientEvents>(
  client: MatsSocketClient,
  name: K,
  predicate: (event: MatsSocketClientEvents[K]) => boolean = () => true,
  timeoutMs = 3000,
): Promise<MatsSocketClientEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for the '${String(name)}' event`));
    }, timeoutMs);
    const off = client.on(name, (event) => {
      if (!predicate(event)) return;
      clearTimeout(timer);
      off();
      resolve(event);
    });
  });
}

/** Collects the messages a client terminator receives, and waits for them. */
export class TerminatorInbox {
  readonly messages: MessageEvent[] = [];
  readonly rejects: MessageEvent[] = [];
  #waiters: (() => void)[] = [];

  constructor(client: MatsSocketClient, terminatorId: string) {
    client.terminator(
      terminatorId,
      (event) => this.#add(this.messages, event),
      (event) => this.#add(this.rejects, event),
    );
  }

  #add(list: MessageEvent[], event: MessageEvent): void {
    list.push(event);
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Waits until `count` messages arrived (RESOLVE/SEND side). */
  async waitFor(count = 1, timeoutMs = 3000): Promise<MessageEvent[]> {
    await eventually(() => this.messages.length >= count, {
      timeoutMs,
      what: `${count} terminator message(s)`,
      wake: (w) => this.#waiters.push(w),
    });
    return this.messages;
  }
}

/**
 * Polls `condition` until it is true (or returns a value other than false/undefined), bounded by `timeoutMs`.
 * `wake` may register a callback that triggers an immediate re-check.
 */
export async function eventually<T>(
  condition: () => T | false | undefined | Promise<T | false | undefined>,
  options: { timeoutMs?: number; intervalMs?: number; what?: string; wake?: (w: () => void) => void } = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 3000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value !== false && value !== undefined) return value;
    const left = deadline - Date.now();
    if (left <= 0)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${options.what ?? 'a condition'}`);
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, Math.min(left, options.intervalMs ?? 20));
      options.wake?.(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}

/** Asserts that `promise` rejects with an instance of `errorClass` with `code`; returns the error. */
export async function expectRejection<E extends MatsSocketError>(
  promise: Promise<unknown>,
  errorClass: abstract new (...args: never[]) => E,
  code: string,
): Promise<E> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(errorClass);
    expect(error).to.have.property('code', code);
    return error as E;
  }
  return expect.fail(`expected a rejection with ${errorClass.name} ${code}`);
}

/**
 * `count` currently free TCP ports on 127.0.0.1, found by binding port 0 (and releasing it). For programs whose
 * ports are fixed by configuration (the compatibility server); there is a small window in which another process
 * could take one.
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const s = net.createServer();
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}
