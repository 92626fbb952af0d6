import net from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * A TCP proxy in front of a server (here the database) that can simulate the server restarting: `outage(ms)` cuts
 * every proxied connection and refuses new ones (the listener is closed) for `ms`, then accepts again on the same
 * port. From the clients' side that is what a restart looks like, without restarting the shared server.
 */
export class OutageProxy {
  readonly #target: { host: string; port: number };
  readonly #pairs = new Set<net.Socket>();
  #server: net.Server | undefined;
  #port = 0;

  private constructor(target: { host: string; port: number }) {
    this.#target = target;
  }

  static async start(target: { host: string; port: number }): Promise<OutageProxy> {
    const proxy = new OutageProxy(target);
    await proxy.#listen(0);
    return proxy;
  }

  get port(): number {
    return this.#port;
  }

  /**
   * Cuts every connection and refuses new ones for `ms`; resolves when it accepts again. `whileDown` runs once the
   * connections are cut (not awaited).
   */
  async outage(ms: number, whileDown?: () => void): Promise<void> {
    await this.#stop();
    whileDown?.();
    await new Promise((r) => setTimeout(r, ms));
    await this.#listen(this.#port);
  }

  close(): Promise<void> {
    return this.#stop();
  }

  #listen(port: number): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.#target.port, this.#target.host);
      for (const [a, b] of [
        [client, upstream],
        [upstream, client],
      ] as const) {
        this.#pairs.add(a);
        a.on('error', () => b.destroy());
        a.on('close', () => {
          this.#pairs.delete(a);
          b.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    this.#server = server;
    return new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        this.#port = (server.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  /** Stops accepting, then cuts every connection (the listener's close completes only once they are gone). */
  #stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    const closed = new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    for (const s of this.#pairs) s.destroy();
    return closed;
  }
}
