import * as amqp from 'amqplib';
import { expect } from 'chai';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import type { Transport } from '../../../src/broker/Transport.ts';
import { requireService, serviceUrls } from '../../helpers/services.ts';
import { createTestBroker, testTransportKinds, type TestBroker } from '../../helpers/transports.ts';

// The helper every reconnect test stands on: it must close every connection of the suite (each transport has a
// consume and a publish connection, and a client closes its other one as soon as the first is dropped) and resolve
// only once they are gone, or tests race the broker's asynchronous close.
if (testTransportKinds().includes('rabbitmq')) {
  describe('TestBroker.dropConnections [RabbitMQ]', function () {
    this.timeout(60_000);
    let broker: TestBroker | undefined;
    let transports: Transport[] = [];
    before(async function () {
      await requireService(this, 'rabbitmq');
      broker = await createTestBroker('rabbitmq');
      transports = ['a', 'b', 'c', 'd', 'e', 'f'].map((n) => broker!.createTransport(n));
      await Promise.all(transports.map((t) => t.connect()));
    });
    after(async () => {
      await broker?.close();
    });

    it('resolves only once the broker let the connection go, also when the client is slow to read the close', async () => {
      const proxy = await SlowReadProxy.start(new URL(serviceUrls.rabbitmq));
      const url = new URL(serviceUrls.rabbitmq);
      url.host = `127.0.0.1:${proxy.port}`;
      const model = await amqp.connect(url.href, {
        clientProperties: { connection_name: `${broker!.prefix}slow` },
      });
      model.on('error', () => undefined);
      let closed = false;
      model.on('close', () => (closed = true));
      // From now on the client gets the broker's bytes 1.5 s late (a busy client); the broker waits for its
      // close-ok meanwhile, and the connection is not gone before that.
      proxy.delayMs = 1500;
      try {
        await broker!.dropConnections('slow');
        expect(closed, 'the client saw the close before dropConnections() resolved').to.equal(true);
      } finally {
        proxy.delayMs = 0;
        if (!closed) await once(model, 'close');
        await proxy.close();
      }
    });

    it('drops every connection, also those their clients close meanwhile, and resolves after they are gone', async () => {
      for (let round = 0; round < 2; round++) {
        const lost = new Set<Transport>();
        const offs = transports.map((t) => {
          const on = (): void => void lost.add(t);
          t.on('transport:disconnected', on);
          return () => t.off('transport:disconnected', on);
        });
        const reconnected = transports.map((t) =>
          once(t, 'transport:connected', { signal: AbortSignal.timeout(20_000) }),
        );
        try {
          await broker!.dropConnections();
          expect(lost.size, `round ${round}: transports that saw the drop`).to.equal(transports.length);
        } finally {
          for (const off of offs) off();
        }
        await Promise.all(reconnected);
      }
    });
  });
}

/** A TCP proxy that can delay what the server sends to the client by `delayMs`. */
class SlowReadProxy {
  delayMs = 0;
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();

  private constructor(target: URL) {
    this.#server = net.createServer((client) => {
      const upstream = net.connect(Number(target.port || 5672), target.hostname);
      for (const socket of [client, upstream]) {
        this.#sockets.add(socket);
        socket.on('error', () => undefined);
        socket.on('close', () => {
          this.#sockets.delete(socket);
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.on('data', (chunk: Buffer) => {
        if (this.delayMs === 0) client.write(chunk);
        else setTimeout(() => client.write(chunk), this.delayMs);
      });
    });
  }

  static async start(target: URL): Promise<SlowReadProxy> {
    const proxy = new SlowReadProxy(target);
    await new Promise<void>((resolve) => proxy.#server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
