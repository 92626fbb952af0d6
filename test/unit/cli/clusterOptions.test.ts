import { expect } from 'chai';
import {
  DEFAULT_CLUSTER_AMQP_URL,
  DEFAULT_CLUSTER_DB_URL,
  readClusterOptions,
} from '../../../src/cli/clusterOptions.ts';
import { ConfigError } from '../../../src/errors.ts';

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('readClusterOptions (npm run cluster flags)', () => {
  it('defaults: 3 nodes from port 8080 on the docker-compose RabbitMQ and MariaDB', () => {
    const o = readClusterOptions([], {});
    expect(o).to.deep.include({
      nodes: 3,
      basePort: 8080,
      amqpUrl: DEFAULT_CLUSTER_AMQP_URL,
      dbUrl: DEFAULT_CLUSTER_DB_URL,
      exitOnFailure: false,
      help: false,
      host: '127.0.0.1',
      adminToken: undefined,
      logLevel: 'info',
    });
    expect(o.db.dialect).to.equal('mysql');
  });

  it('takes the URLs from the environment of npm start, and the flags over them', () => {
    const env = {
      MATSSOCKET_AMQP_URL: 'amqp://u:p@mq:5672',
      MATSSOCKET_DB_URL: 'postgres://pg/app',
      LOG_LEVEL: 'WARN',
    };
    expect(readClusterOptions([], env)).to.deep.include({
      amqpUrl: 'amqp://u:p@mq:5672',
      dbUrl: 'postgres://pg/app',
      logLevel: 'warn',
    });
    const o = readClusterOptions(
      [
        '--nodes',
        '2',
        '--base-port=9000',
        '--amqp-url',
        'amqps://x',
        '--database-url',
        'mariadb://db/c',
        '--exit-on-failure',
      ],
      env,
    );
    expect(o).to.deep.include({ nodes: 2, basePort: 9000, amqpUrl: 'amqps://x', exitOnFailure: true });
    expect(o.db).to.deep.equal({ dialect: 'mysql', target: 'mysql://db/c' });
    expect(readClusterOptions(['-h'], {}).help).to.equal(true);
    expect(readClusterOptions(['--base-port', '0'], {}).basePort).to.equal(0);
  });

  it('names the flag or variable at fault', () => {
    expect(configError(() => readClusterOptions(['--nodes', '0'], {})).field).to.equal('--nodes');
    expect(configError(() => readClusterOptions(['--nodes', '17'], {})).field).to.equal('--nodes');
    expect(configError(() => readClusterOptions(['--nodes', 'x'], {})).field).to.equal('--nodes');
    expect(configError(() => readClusterOptions(['--nodes'], {})).field).to.equal('--nodes');
    expect(configError(() => readClusterOptions(['--bogus'], {})).field).to.equal('--bogus');
    expect(configError(() => readClusterOptions(['stray'], {})).field).to.equal('arguments');
    const pastTop = configError(() => readClusterOptions(['--nodes', '3', '--base-port', '65534'], {}));
    expect(pastTop.field).to.equal('--base-port');
    expect(configError(() => readClusterOptions(['--amqp-url', 'http://x'], {})).field).to.equal(
      '--amqp-url',
    );
    expect(configError(() => readClusterOptions([], { MATSSOCKET_AMQP_URL: 'x' })).field).to.equal(
      'MATSSOCKET_AMQP_URL',
    );
    expect(configError(() => readClusterOptions([], { LOG_LEVEL: 'loud' })).field).to.equal('LOG_LEVEL');
    expect(configError(() => readClusterOptions([], { MATSSOCKET_ADMIN_TOKEN: 'short' })).field).to.equal(
      'MATSSOCKET_ADMIN_TOKEN',
    );
  });

  it('refuses SQLite, which node processes cannot share, naming where it came from', () => {
    const fromEnv = configError(() => readClusterOptions([], { MATSSOCKET_DB_URL: 'sqlite:data/x.sqlite' }));
    expect(fromEnv.field).to.equal('MATSSOCKET_DB_URL');
    expect(fromEnv.message).to.contain('--database-url');
    const fromFlag = configError(() => readClusterOptions(['--database-url', 'sqlite::memory:'], {}));
    expect(fromFlag.field).to.equal('--database-url');
  });
});
