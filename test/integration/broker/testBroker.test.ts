import { once } from 'node:events';
import type { Transport } from '../../../src/broker/Transport.ts';
import { requireService } from '../../../harness/services.ts';
import { createTestBroker, testTransportKinds, type TestBroker } from '../../../harness/transports.ts';

// The helper every reconnect test stands on: it must close every connection of the suite, although each transport
// has a consume and a publish connection and closes its other one as soon as the first is dropped (while the helper
// is still closing them).
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

    it('drops every connection, also those their clients close meanwhile', async () => {
      for (let round = 0; round < 2; round++) {
        const events = (name: 'transport:disconnected' | 'transport:connected') =>
          transports.map((t) => once(t, name, { signal: AbortSignal.timeout(20_000) }));
        const lost = events('transport:disconnected');
        const reconnected = events('transport:connected');
        await broker!.dropConnections();
        await Promise.all(lost);
        await Promise.all(reconnected);
      }
    });
  });
}
