import { expect } from 'chai';
import { ConfigError, DataAccessError } from '../../../src/errors.ts';
import { createDatabaseIfMissing } from '../../../src/store/createDatabaseIfMissing.ts';
import { createDatabase, parseDatabaseUrl } from '../../../src/store/database.ts';
import { failureCount, keepForInspection, runId } from '../../../harness/runState.ts';
import { requireService, serviceUrls } from '../../../harness/services.ts';
import { freePorts } from '../../helpers/clientKit.ts';

const servers = [
  { label: 'MariaDB', service: 'mariadb', admin: serviceUrls.mariadb, quote: '`' },
  { label: 'PostgreSQL', service: 'postgres', admin: serviceUrls.postgres, quote: '"' },
] as const;

describe('createDatabaseIfMissing (npm run cluster)', function () {
  this.timeout(20_000);

  for (const server of servers) {
    describe(`[${server.label}]`, () => {
      const name = `ms_${runId}_created`;
      const url = new URL(server.admin);
      url.pathname = `/${name}`;
      const failuresAtStart = failureCount();

      before(async function () {
        await requireService(this, server.service);
      });

      after(async () => {
        if (keepForInspection(url.href, failuresAtStart)) return;
        const admin = createDatabase(server.admin, { poolMax: 1 });
        try {
          const force = server.service === 'postgres' ? ' WITH (FORCE)' : '';
          await admin.raw(`DROP DATABASE IF EXISTS ${server.quote}${name}${server.quote}${force}`);
        } finally {
          await admin.destroy();
        }
      });

      it('creates the database once, and it can then be used', async () => {
        const db = parseDatabaseUrl(url.href);
        expect(await createDatabaseIfMissing(db)).to.equal(true);
        expect(await createDatabaseIfMissing(db)).to.equal(false);
        const knex = createDatabase(db, { poolMax: 1 });
        try {
          await knex.raw('select 1');
        } finally {
          await knex.destroy();
        }
      });
    });
  }

  it('refuses a URL without a database, or with a name it would have to escape', async () => {
    for (const target of ['mysql://root@127.0.0.1:3306', 'mysql://root@127.0.0.1:3306/a%60b']) {
      const err = await createDatabaseIfMissing(parseDatabaseUrl(target), { field: '--database-url' }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(ConfigError).with.property('field', '--database-url');
    }
  });

  it('an unreachable server: DATA_ACCESS with the driver error as cause', async () => {
    const [port] = await freePorts(1);
    const err = await createDatabaseIfMissing(parseDatabaseUrl(`mysql://root@127.0.0.1:${port}/x`), {
      connectTimeoutMs: 2000,
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(DataAccessError).with.property('code', 'DATA_ACCESS');
    expect((err as DataAccessError).cause).to.have.property('code', 'ECONNREFUSED');
  });
});
