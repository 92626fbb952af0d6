import { expect } from 'chai';
import { describeConnectFailure, hostAndPort } from '../../../src/cli/startupCheck.ts';
import { DataAccessError } from '../../../src/errors.ts';

function errno(code: string, message = `connect ${code}`): Error {
  return Object.assign(new Error(message), { code });
}

describe('describeConnectFailure (one start-up line per unreachable broker or database)', () => {
  it('names host and port with the default port of the scheme, never the password', () => {
    expect(hostAndPort('postgres://u:secret@db.example:6543/app')).to.equal('db.example:6543');
    expect(hostAndPort('postgresql://db/app')).to.equal('db:5432');
    expect(hostAndPort('mysql://root@127.0.0.1/app')).to.equal('127.0.0.1:3306');
    expect(hostAndPort('amqp://guest:guest@mq')).to.equal('mq:5672');
  });

  it('a refused connection: the cause, found under our own error, and the fix', () => {
    const wrapped = new DataAccessError('migrating failed', { cause: errno('ECONNREFUSED') });
    const line = describeConnectFailure('database', 'postgres://u:secret@127.0.0.1:5999/app', wrapped);
    expect(line).to.equal(
      'cannot reach the database server at 127.0.0.1:5999: connection refused (ECONNREFUSED); start it there, or fix MATSSOCKET_DB_URL, or unset it for the embedded SQLite file',
    );
    expect(line).to.not.contain('secret');
  });

  it('an unknown host, an unknown database and a refused login each say what to change', () => {
    expect(describeConnectFailure('broker', 'amqp://mq.invalid', errno('ENOTFOUND'))).to.contain(
      'unknown host (ENOTFOUND); fix the host in MATSSOCKET_AMQP_URL',
    );
    expect(
      describeConnectFailure(
        'database',
        'mysql://root@h/shop',
        errno('ER_BAD_DB_ERROR', "Unknown database 'shop'"),
      ),
    ).to.contain("has no database 'shop' (ER_BAD_DB_ERROR: Unknown database 'shop'); create it");
    expect(describeConnectFailure('database', 'postgres://h/shop', errno('3D000'))).to.contain(
      "has no database 'shop' (3D000",
    );
    expect(describeConnectFailure('database', 'postgres://h/shop', errno('28P01'))).to.contain(
      'refused the login (28P01',
    );
    expect(
      describeConnectFailure(
        'broker',
        'amqp://mq',
        new Error('Handshake terminated by server: 403 (ACCESS-REFUSED)'),
      ),
    ).to.equal(
      'RabbitMQ at mq:5672 refused the login (ACCESS_REFUSED); fix the user and password in MATSSOCKET_AMQP_URL',
    );
  });

  it('names the settings of another program when given its wording (npm run cluster: flags)', () => {
    const wording = { broker: { setting: '--amqp-url', fallback: 'or start RabbitMQ' } };
    expect(describeConnectFailure('broker', 'amqp://127.0.0.1', errno('ECONNREFUSED'), wording)).to.equal(
      'cannot reach RabbitMQ at 127.0.0.1:5672: connection refused (ECONNREFUSED); start it there, or fix --amqp-url, or start RabbitMQ',
    );
    expect(describeConnectFailure('database', 'mysql://h/x', errno('ENOTFOUND'), wording)).to.contain(
      'fix the host in MATSSOCKET_DB_URL',
    );
  });
});
