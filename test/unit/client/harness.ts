import { expect } from 'chai';
import { WebSocket } from 'ws';
import type { MatsSocketError } from '../../../src/errors.ts';
import type { MatsSocketClientEvents } from '../../../src/client/clientEvents.ts';
import type { MatsSocketClientOptions } from '../../../src/client/clientOptions.ts';
import { MatsSocketClient } from '../../../src/client/MatsSocketClient.ts';
import { FakeServer, type FakeConnection } from '../../helpers/fakeServer.ts';

/**
 * Timings for tests: the protocol's batching delays stay at their defaults (they are short), everything that
 * would take seconds is cut to tens of ms. PINGs are off unless a test turns them on.
 */
export const fastTimings: Partial<MatsSocketClientOptions> = {
  shuffleUrls: false,
  initialPingDelayMinMs: 600_000,
  initialPingDelayMaxMs: 600_000,
  reconnectDelayMinMs: 20,
  reconnectDelayMaxMs: 40,
  connectTimeoutMinMs: 300,
  connectTimeoutBaseMs: 300,
  connectBackoff: { initialMs: 20, factor: 2, maxMs: 80, jitter: 0.2 },
  retryDelayBaseMs: 20,
  retryDelayJitterMs: 10,
  closeTimeoutMs: 500,
};

export const AUTH = 'DummyAuth:standard:-1';

/** Creates fake servers and clients for one test and closes them all afterwards (register with `useHarness`). */
export class Harness {
  readonly servers: FakeServer[] = [];
  readonly clients: MatsSocketClient[] = [];

  async server(): Promise<FakeServer> {
    const server = await FakeServer.start();
    this.servers.push(server);
    return server;
  }

  /** A client for the servers (or URLs), with test timings and an authorization set (`null`: none). */
  client(
    targets: FakeServer | (FakeServer | string)[],
    overrides: Partial<MatsSocketClientOptions> = {},
    authorization: string | null = AUTH,
  ): MatsSocketClient {
    const list = Array.isArray(targets) ? targets : [targets];
    const client = new MatsSocketClient({
      appName: 'TestApp',
      appVersion: '1.2.3',
      urls: list.map((t) => (typeof t === 'string' ? t : t.url)),
      webSocket: WebSocket,
      ...fastTimings,
      ...overrides,
    });
    if (authorization !== null) client.setCurrentAuthorization(authorization);
    this.clients.push(client);
    return client;
  }

  /** Closes everything, then fails the test if any client frame broke the strict server-side parser. */
  async teardown(): Promise<void> {
    await Promise.all(this.clients.splice(0).map((client) => client.close('test over')));
    const servers = this.servers.splice(0);
    await Promise.all(servers.map((server) => server.close()));
    const errors = servers.flatMap((server) => server.connections.flatMap((c) => c.protocolErrors));
    expect(errors, 'protocol errors in client frames').to.deep.equal([]);
  }
}

/** A Harness torn down after each test of the calling suite. */
export function useHarness(): Harness {
  const harness = new Harness();
  afterEach(() => harness.teardown());
  return harness;
}

/** Waits for the next client event of `name` that matches `predicate`, bounded by `timeoutMs`. */
export function nextEvent<K extends keyof MatsSocketClientEvents>(
  client: MatsSocketClient,
  name: K,
  predicate: (event: MatsSocketClientEvents[K]) => boolean = () => true,
  timeoutMs = 2000,
): Promise<MatsSocketClientEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for the '${name}' event`));
    }, timeoutMs);
    const off = client.on(name, (event) => {
      if (!predicate(event)) return;
      clearTimeout(timer);
      off();
      resolve(event);
    });
  });
}

/** Asserts that `promise` rejects with an instance of `errorClass` with the given `code`; returns the error. */
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
  expect.fail(`expected a rejection with ${errorClass.name} ${code}`);
}

/**
 * For absence checks only ("no reconnect happens"): lets `ms` pass. Never used to wait for a state; tests wait for
 * events for that.
 */
export function quietPeriod(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Starts a session: the client's first frame must be HELLO; the server answers WELCOME. */
export async function establish(
  server: FakeServer,
  sid = 'SessionId0000001',
): Promise<{ connection: FakeConnection; hello: Awaited<ReturnType<FakeConnection['welcome']>> }> {
  const connection = await server.nextConnection();
  const hello = await connection.welcome(sid);
  return { connection, hello };
}
