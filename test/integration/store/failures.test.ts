import { expect } from 'chai';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { DataAccessError, ErrorCode } from '../../../src/errors.ts';
import { createDatabase } from '../../../src/store/database.ts';
import { SqlClusterStore } from '../../../src/store/SqlClusterStore.ts';
import { describeEachDatabase } from '../../../harness/databases.ts';
import { requireService, serviceUrls } from '../../../harness/services.ts';
import { expectRejection, newSession, storeMigrationSets } from './storeFixture.ts';
import { migrateLatest } from '../../../src/store/migrate.ts';

/** A TCP server that accepts connections and never says a word: a hung database. */
async function silentServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; result: PromiseSettledResult<T> }> {
  const t0 = Date.now();
  const [result] = (await Promise.allSettled([fn()])) as [PromiseSettledResult<T>];
  return { ms: Date.now() - t0, result };
}

describe('ClusterStoreAndForward when the database is unavailable', () => {
  const cases = [
    { label: 'MariaDB', url: (port: number) => `mysql://root@127.0.0.1:${port}/nodb` },
    { label: 'PostgreSQL', url: (port: number) => `postgres://postgres@127.0.0.1:${port}/nodb` },
  ];
  for (const c of cases) {
    describe(c.label, () => {
      it('a refused connection (closed port) gives DataAccessError from boot() and from operations', async () => {
        const store = SqlClusterStore.fromUrl(c.url(1), { nodeName: 'n', connectTimeoutMs: 1000 });
        try {
          const boot = await timed(() => store.boot());
          expect(boot.result.status).to.equal('rejected');
          const err = (boot.result as PromiseRejectedResult).reason as unknown;
          expect(err).to.be.instanceOf(DataAccessError).with.property('code', ErrorCode.DATA_ACCESS);
          expect((err as Error).cause).to.be.an('error');
          expect(boot.ms).to.be.below(3000);
          const op = await timed(() => store.registerNewSession(newSession()));
          expect((op.result as PromiseRejectedResult).reason).to.be.instanceOf(DataAccessError);
          expect(op.ms).to.be.below(3000);
        } finally {
          await store.close();
        }
      });

      it('a hung server (accepts, never answers) gives DataAccessError bounded by connectTimeoutMs', async () => {
        const hung = await silentServer();
        const store = SqlClusterStore.fromUrl(c.url(hung.port), { nodeName: 'n', connectTimeoutMs: 500 });
        try {
          const boot = await timed(() => store.boot());
          expect((boot.result as PromiseRejectedResult).reason).to.be.instanceOf(DataAccessError);
          expect(boot.ms).to.be.within(400, 3000);
          const op = await timed(() => store.getMessagesFromOutbox('s', 10));
          expect((op.result as PromiseRejectedResult).reason)
            .to.be.instanceOf(DataAccessError)
            .with.property('code', ErrorCode.DATA_ACCESS);
          // Often immediate: the still-pending connection attempt fails this acquire too.
          expect(op.ms).to.be.below(3000);
        } finally {
          await store.close();
          await hung.close();
        }
      });
    });
  }
});

describeEachDatabase('ClusterStoreAndForward on a broken pool', (db) => {
  before(async () => {
    await migrateLatest(db().knex, storeMigrationSets);
  });

  it('an operation on a destroyed knex gives DataAccessError', async () => {
    const knex = db().connect();
    const store = new SqlClusterStore(knex, { nodeName: 'n', connectTimeoutMs: 1000 });
    const s = newSession();
    await store.registerNewSession(s);
    await knex.destroy();
    await expectRejection(store.isSessionExists(s.sessionId), DataAccessError, ErrorCode.DATA_ACCESS);
    await expectRejection(
      store.storeMessageIdInInbox(s.sessionId, '1'),
      DataAccessError,
      ErrorCode.DATA_ACCESS,
    );
    await expectRejection(store.boot(), DataAccessError);
  });

  it('connections killed by the server give DataAccessError or succeed, never crash, and the pool recovers', async function () {
    const dialect = db().dialect;
    if (dialect === 'sqlite') this.skip(); // in-process: nothing to kill
    await requireService(this, dialect === 'mysql' ? 'mariadb' : 'postgres');
    const knex = db().connect();
    const store = new SqlClusterStore(knex, { nodeName: 'n', connectTimeoutMs: 2000 });
    const s = newSession();
    await store.registerNewSession(s);
    await Promise.all([1, 2, 3].map((i) => store.storeMessageIdInInbox(s.sessionId, `warm-${i}`)));
    const dbName = new URL(db().url).pathname.slice(1);
    const admin = createDatabase(dialect === 'mysql' ? serviceUrls.mariadb : serviceUrls.postgres, {
      poolMax: 1,
    });
    try {
      if (dialect === 'mysql') {
        const rows = (
          await admin.raw<[{ id: number }[]]>(
            `SELECT id FROM information_schema.processlist WHERE db = ? AND id <> CONNECTION_ID()`,
            [dbName],
          )
        )[0]!;
        expect(rows.length).to.be.greaterThan(0);
        for (const r of rows) await admin.raw(`KILL ${Number(r.id)}`).catch(() => undefined);
      } else {
        const { rows } = await admin.raw<{ rows: unknown[] }>(
          `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE datname = ? AND pid <> pg_backend_pid()`,
          [dbName],
        );
        expect(rows.length).to.be.greaterThan(0);
      }
    } finally {
      await admin.destroy();
    }
    const results = await Promise.allSettled(
      [1, 2, 3, 4].map((i) => store.storeMessageIdInInbox(s.sessionId, `after-${i}`)),
    );
    for (const r of results) {
      if (r.status === 'rejected') expect(r.reason).to.be.instanceOf(DataAccessError);
    }
    // Broken connections are evicted; a later call works again.
    let ok = false;
    for (let i = 0; i < 10 && !ok; i++) {
      ok = await store.isSessionExists(s.sessionId).then(
        () => true,
        () => false,
      );
    }
    expect(ok).to.be.true;
    await store.storeMessageIdInInbox(s.sessionId, 'recovered');
  });
});
