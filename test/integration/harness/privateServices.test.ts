import { existsSync } from 'node:fs';
import { expect } from 'chai';
import { createDatabase } from '../../../src/store/database.ts';
import {
  PrivateMariaDb,
  requirePrivateService,
  startPrivateMariaDb,
} from '../../../harness/privateServices.ts';

/**
 * The private servers of harness/privateServices.ts, on MariaDB (a RabbitMQ node boots in seconds: the memory
 * alarm contract and the chaos soak run it): what they keep across a graceful restart and a `kill -9`, and what a
 * failed start says.
 */
describe('Private servers for tests (harness/privateServices.ts) [MariaDB]', function () {
  this.timeout(60_000);

  before(function () {
    requirePrivateService(this, 'mariadb');
  });

  it('keeps committed data across a graceful restart and a kill -9, on the same URL; close() removes it all', async () => {
    const server = await startPrivateMariaDb();
    const knex = () => createDatabase(`${server.url}/mysql`, { poolMax: 1, connectTimeoutMs: 2000 });
    try {
      let db = knex();
      await db.raw('CREATE DATABASE kept');
      await db.raw('CREATE TABLE kept.t (n INT PRIMARY KEY) ENGINE=InnoDB');
      await db.raw('INSERT INTO kept.t VALUES (1)');
      await db.destroy();
      for (const mode of ['graceful', 'kill'] as const) {
        await server.restart(mode);
        db = knex();
        const [rows] = (await db.raw('SELECT n FROM kept.t')) as [{ n: number }[]];
        expect(
          rows.map((r) => r.n),
          mode,
        ).to.deep.equal([1]);
        await db.destroy();
      }
      expect(server.bootMs).to.have.length(3);
    } finally {
      await server.close();
    }
    expect(existsSync(server.dir)).to.equal(false);
    await server.close(); // idempotent
  });

  it('a start that does not finish in time fails naming the server, its port and its output', async () => {
    let error: Error | undefined;
    try {
      await PrivateMariaDb.start({ bootTimeoutMs: 1 });
    } catch (err) {
      error = err as Error;
    }
    expect(error?.message).to.match(/^private MariaDB \(127\.0\.0\.1:\d+, .+\) was not ready within 1 ms/);
    expect(error?.message).to.contain('output:');
  });
});
