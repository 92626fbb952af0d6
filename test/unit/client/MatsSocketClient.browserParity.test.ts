import { expect } from 'chai';
import type { ClientErrorEvent, ConnectionEvent } from '../../../src/client/clientEvents.ts';
import type { OutOfBandCloseInfo } from '../../../src/client/clientOptions.ts';
import type { PreconnectInfo } from '../../../src/client/preconnect.ts';
import { ConfigError } from '../../../src/errors.ts';
import { MatsSocketClient } from '../../../src/client/MatsSocketClient.ts';
import { AUTH, establish, fastTimings, nextEvent, useHarness } from './harness.ts';

/** A stand-in for a browser `window`: listeners by event type, and a way to fire one. */
class FakeWindow {
  readonly listeners = new Map<string, Set<() => void>>();

  addEventListener(type: string, listener: () => void): void {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type)!.add(listener);
  }

  removeEventListener(type: string, listener: () => void): void {
    this.listeners.get(type)?.delete(listener);
  }

  count(type: string): number {
    return this.listeners.get(type)?.size ?? 0;
  }

  fire(type: string): void {
    for (const listener of [...(this.listeners.get(type) ?? [])]) listener();
  }
}

/** Puts `value` on `globalThis[name]` for one test; `restore()` puts back what was there. */
function installGlobal(name: string, value: unknown): { restore(): void } {
  const previous = Object.getOwnPropertyDescriptor(globalThis, name);
  Object.defineProperty(globalThis, name, { value, configurable: true, writable: true });
  return {
    restore() {
      if (previous) Object.defineProperty(globalThis, name, previous);
      else delete (globalThis as Record<string, unknown>)[name];
    },
  };
}

describe('MatsSocketClient: connected, preconnect, page unload (the official client parity)', () => {
  const h = useHarness();
  const globals: { restore(): void }[] = [];
  afterEach(() => {
    for (const g of globals.splice(0).reverse()) g.restore();
  });

  describe('connected', () => {
    it('is true from the WebSocket open (before WELCOME) until it closes; false while reconnecting and after close()', async () => {
      const server = await h.server();
      const client = h.client(server, { reconnectDelayMinMs: 200, reconnectDelayMaxMs: 200 });
      expect(client.connected).to.equal(false);
      void client.send('Test.single', 't1', {});
      const connection = await server.nextConnection();
      await nextEvent(client, 'connection', (e) => e.type === 'CONNECTED');
      expect(client.state).to.equal('CONNECTED');
      expect(client.connected).to.equal(true);
      await connection.welcome('SessionConnected1');
      await nextEvent(client, 'connection', (e) => e.type === 'SESSION_ESTABLISHED');
      expect(client.connected).to.equal(true);

      await connection.terminate();
      await nextEvent(client, 'connection', (e) => e.type === 'LOST_CONNECTION');
      expect(client.connected).to.equal(false);
      const again = await server.nextConnection();
      await again.welcome('SessionConnected1');
      await nextEvent(client, 'connection', (e) => e.type === 'SESSION_ESTABLISHED');
      expect(client.connected).to.equal(true);
      await client.close('done');
      expect(client.connected).to.equal(false);
    });
  });

  describe('preconnect', () => {
    it('runs the function before each attempt and connects with ?preconnect=true', async () => {
      const server = await h.server();
      const calls: PreconnectInfo[] = [];
      const client = h.client(server, {
        preconnect: (info) => {
          calls.push(info);
          expect(server.connections).to.have.length(0);
          return Promise.resolve();
        },
      });
      void client.send('Test.single', 't1', {});
      const { connection } = await establish(server);
      expect(connection.requestUrl).to.equal('/matssocket?preconnect=true');
      expect(calls).to.have.length(1);
      expect(calls[0]).to.include({ webSocketUrl: server.url, authorization: AUTH });
      expect(calls[0]!.signal.aborted).to.equal(false);
    });

    it('a failed preconnect fails the attempt (error event, next URL); exhausted attempts close the session 1008', async () => {
      const [a, b] = [await h.server(), await h.server()];
      const urls: string[] = [];
      const client = h.client([a, b], {
        maxConnectionAttempts: 3,
        preconnect: (info) => {
          urls.push(info.webSocketUrl);
          return Promise.reject(new Error('HTTP 401'));
        },
      });
      const errors: ClientErrorEvent[] = [];
      client.on('error', (e) => errors.push(e));
      void client.send('Test.single', 't1', {}).catch(() => undefined);
      const closed = await nextEvent(client, 'session:closed');
      expect(closed.code).to.equal(1008);
      expect(urls).to.deep.equal([a.url, b.url, a.url]);
      expect(errors.filter((e) => e.type === 'preconnect-failed')).to.have.length(3);
      expect(errors[0]!.error).to.have.property('code', 'CLIENT_PRECONNECT_FAILED');
      expect(a.connections.length + b.connections.length).to.equal(0);
    });

    it('a preconnect slower than the connect timeout is aborted; the next attempt goes on', async () => {
      const server = await h.server();
      const signals: AbortSignal[] = [];
      const client = h.client(server, {
        connectTimeoutMinMs: 100,
        connectTimeoutBaseMs: 100,
        preconnect: ({ signal }) => {
          signals.push(signal);
          return signals.length === 1 ? new Promise(() => undefined) : Promise.resolve();
        },
      });
      const waiting = nextEvent(client, 'connection', (e: ConnectionEvent) => e.type === 'WAITING');
      void client.send('Test.single', 't1', {});
      await waiting;
      expect(signals[0]!.aborted).to.equal(true);
      await establish(server);
      expect(signals).to.have.length(2);
    });

    it('true: GETs the HTTP form of the URL with Authorization and credentials; only 200/202/204 go on', async () => {
      const server = await h.server();
      const requests: { url: string; init: { headers: Record<string, string>; credentials: string } }[] = [];
      let status = 401;
      globals.push(
        installGlobal(
          'fetch',
          (url: string, init: { headers: Record<string, string>; credentials: string }) => {
            requests.push({ url, init });
            return Promise.resolve({ status: status === 401 ? status++ : 204, body: null });
          },
        ),
      );
      const client = h.client(server, { preconnect: true });
      const failed = nextEvent(client, 'error', (e) => e.type === 'preconnect-failed');
      void client.send('Test.single', 't1', {});
      expect(((await failed).error as { status: number }).status).to.equal(401);
      await establish(server);
      expect(requests).to.have.length(2);
      expect(requests[0]!.url).to.equal(server.url.replace('ws://', 'http://'));
      expect(requests[0]!.init.headers).to.deep.equal({ Authorization: AUTH });
      expect(requests[0]!.init.credentials).to.equal('include');
    });

    it('refuses an option of the wrong type', () => {
      const base = { appName: 'A', appVersion: '1', urls: 'ws://localhost/x', ...fastTimings };
      const make = (extra: object) => () =>
        new MatsSocketClient({ ...base, webSocket: class {} as never, ...extra });
      expect(make({ preconnect: 42 }))
        .to.throw(ConfigError)
        .with.property('field', 'preconnect');
      expect(make({ preconnect: '' }))
        .to.throw(ConfigError)
        .with.property('field', 'preconnect');
      expect(make({ closeOnPageUnload: 'yes' }))
        .to.throw(ConfigError)
        .with.property('field', 'closeOnPageUnload');
    });
  });

  describe('page unload (browsers)', () => {
    it('closes the session on beforeunload: 4000 on the socket, the out-of-band close, listeners removed', async () => {
      const window = new FakeWindow();
      globals.push(installGlobal('window', window));
      const server = await h.server();
      const outOfBand: OutOfBandCloseInfo[] = [];
      const client = h.client(server, { outOfBandClose: (info) => outOfBand.push(info) });
      const established = nextEvent(client, 'connection', (e) => e.type === 'SESSION_ESTABLISHED');
      void client.send('Test.single', 't1', {}).catch(() => undefined);
      const { connection } = await establish(server, 'SessionUnload001');
      await established;
      expect(window.count('beforeunload')).to.equal(1);
      expect(window.count('pagehide')).to.equal(1);

      window.fire('beforeunload');
      expect(await connection.waitClosed()).to.deep.equal({
        code: 4000,
        reason: 'From client: page unloaded',
      });
      expect(outOfBand).to.deep.equal([{ webSocketUrl: server.url, sessionId: 'SessionUnload001' }]);
      expect(window.count('beforeunload') + window.count('pagehide')).to.equal(0);
      expect(client.sessionId).to.equal(undefined);
    });

    it('sends the close_session beacon by default; pagehide works too; close() removes the listeners', async () => {
      const window = new FakeWindow();
      const beacons: string[] = [];
      globals.push(installGlobal('window', window));
      globals.push(installGlobal('navigator', { sendBeacon: (url: string) => beacons.push(url) > 0 }));
      const server = await h.server();
      const client = h.client(server, {}, AUTH);
      const established = nextEvent(client, 'connection', (e) => e.type === 'SESSION_ESTABLISHED');
      void client.send('Test.single', 't1', {}).catch(() => undefined);
      await establish(server, 'SessionBeacon001');
      await established;
      window.fire('pagehide');
      expect(beacons).to.deep.equal([
        `${server.url.replace('ws://', 'http://')}/close_session?session_id=SessionBeacon001`,
      ]);

      void client.send('Test.single', 't2', {}).catch(() => undefined);
      await establish(server, 'SessionBeacon002');
      expect(window.count('pagehide')).to.equal(1);
      await client.close('logged out');
      expect(window.count('beforeunload') + window.count('pagehide')).to.equal(0);
    });

    it('registers nothing with closeOnPageUnload: false, nor without a window (Node)', async () => {
      const server = await h.server();
      const plain = h.client(server);
      void plain.send('Test.single', 't1', {}).catch(() => undefined);
      await establish(server, 'SessionNoWindow1');
      const window = new FakeWindow();
      globals.push(installGlobal('window', window));
      const off = h.client(server, { closeOnPageUnload: false });
      void off.send('Test.single', 't1', {}).catch(() => undefined);
      await establish(server, 'SessionNoWindow2');
      expect(window.listeners.size).to.equal(0);
    });
  });
});
