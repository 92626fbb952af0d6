import { expect } from 'chai';
import { checkStartupTargets } from '../../../src/cli/startupCheck.ts';
import { ErrorCode, MatsSocketError } from '../../../src/errors.ts';
import { parseDatabaseUrl } from '../../../src/store/database.ts';
import { runId } from '../../../harness/runState.ts';
import { requireService, serviceUrls } from '../../../harness/services.ts';

const sqlite = parseDatabaseUrl('sqlite::memory:');

async function failure(promise: Promise<void>): Promise<MatsSocketError> {
  try {
    await promise;
  } catch (err) {
    expect(err).to.be.instanceOf(MatsSocketError);
    return err as MatsSocketError;
  }
  throw new Error('expected the start-up check to fail');
}

describe('checkStartupTargets against the real servers', function () {
  this.timeout(20_000);

  it('passes for reachable RabbitMQ, MariaDB and PostgreSQL', async function () {
    await requireService(this, 'rabbitmq');
    await requireService(this, 'mariadb');
    await requireService(this, 'postgres');
    await checkStartupTargets({ amqpUrl: serviceUrls.rabbitmq, db: parseDatabaseUrl(serviceUrls.postgres) });
    await checkStartupTargets({ amqpUrl: undefined, db: parseDatabaseUrl(`${serviceUrls.mariadb}/mysql`) });
  });

  it('an unknown database on MariaDB and on PostgreSQL', async function () {
    await requireService(this, 'mariadb');
    await requireService(this, 'postgres');
    const name = `nosuch_${runId}`;
    const maria = await failure(
      checkStartupTargets({ amqpUrl: undefined, db: parseDatabaseUrl(`${serviceUrls.mariadb}/${name}`) }),
    );
    expect(maria.code).to.equal(ErrorCode.DATA_ACCESS);
    expect(maria.message).to.contain(`has no database '${name}' (ER_BAD_DB_ERROR`);
    const postgres = await failure(
      checkStartupTargets({
        amqpUrl: undefined,
        db: parseDatabaseUrl(serviceUrls.postgres.replace(/\/[^/]*$/, `/${name}`)),
      }),
    );
    expect(postgres.message).to.contain(`has no database '${name}' (3D000`);
  });

  it('a wrong RabbitMQ password and an unknown vhost', async function () {
    await requireService(this, 'rabbitmq');
    const url = new URL(serviceUrls.rabbitmq);
    url.password = 'wrong';
    const login = await failure(checkStartupTargets({ amqpUrl: url.href, db: sqlite }));
    expect(login.code).to.equal(ErrorCode.TRANSPORT_UNAVAILABLE);
    expect(login.message).to.contain('refused the login (ACCESS_REFUSED)').and.not.contain('wrong');
    const vhost = await failure(
      checkStartupTargets({ amqpUrl: `${serviceUrls.rabbitmq}/nosuch_${runId}`, db: sqlite }),
    );
    expect(vhost.message).to.contain(`refused the virtual host 'nosuch_${runId}'`);
  });
});
