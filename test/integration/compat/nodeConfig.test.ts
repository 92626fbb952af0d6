import { expect } from 'chai';
import { hostname } from 'node:os';
import {
  DEFAULT_COMPAT_DB_URL,
  readCompatServerConfig,
  readMainNodeConfig,
  type Environment,
} from '../../../src/cli/nodeConfig.ts';
import { ConfigError, ErrorCode } from '../../../src/errors.ts';

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    expect(err).to.have.property('code', ErrorCode.CONFIG_INVALID);
    return err as ConfigError;
  }
  return expect.fail('expected a ConfigError');
}

describe('CLI configuration from the environment (nodeConfig)', () => {
  describe('readCompatServerConfig', () => {
    it('defaults: 127.0.0.1:8080-8082, SQLite :memory:, in-memory broker, info', () => {
      const config = readCompatServerConfig({});
      expect(config).to.deep.include({
        host: '127.0.0.1',
        ports: [8080, 8081, 8082],
        amqpUrl: undefined,
        dbUrl: DEFAULT_COMPAT_DB_URL,
        concurrency: undefined,
        queuePrefix: 'mats.',
        logLevel: 'info',
      });
      expect(config.db).to.deep.equal({ dialect: 'sqlite', target: ':memory:' });
    });

    it('reads every variable', () => {
      const config = readCompatServerConfig({
        MATSSOCKET_HOST: '0.0.0.0',
        MATSSOCKET_PORTS: ' 9001 , 9002 ',
        MATSSOCKET_AMQP_URL: 'amqp://guest:guest@127.0.0.1:5672',
        MATSSOCKET_DB_URL: 'mariadb://root@127.0.0.1:3306/x',
        MATSSOCKET_CONCURRENCY: '4',
        MATSSOCKET_QUEUE_PREFIX: 'compat.',
        LOG_LEVEL: 'DEBUG',
      });
      expect(config).to.deep.include({
        host: '0.0.0.0',
        ports: [9001, 9002],
        amqpUrl: 'amqp://guest:guest@127.0.0.1:5672',
        concurrency: 4,
        queuePrefix: 'compat.',
        logLevel: 'debug',
      });
      expect(config.db.dialect).to.equal('mysql');
    });

    it('names the offending variable', () => {
      const cases: [Environment, string][] = [
        [{ MATSSOCKET_PORTS: '8080,x' }, 'MATSSOCKET_PORTS'],
        [{ MATSSOCKET_PORTS: '8080,8080' }, 'MATSSOCKET_PORTS'],
        [{ MATSSOCKET_PORTS: '0' }, 'MATSSOCKET_PORTS'],
        [{ MATSSOCKET_PORTS: '70000' }, 'MATSSOCKET_PORTS'],
        [{ MATSSOCKET_DB_URL: 'oracle://x' }, 'MATSSOCKET_DB_URL'],
        [{ MATSSOCKET_AMQP_URL: 'http://x' }, 'MATSSOCKET_AMQP_URL'],
        [{ MATSSOCKET_CONCURRENCY: '0' }, 'MATSSOCKET_CONCURRENCY'],
        [{ MATSSOCKET_CONCURRENCY: '2.5' }, 'MATSSOCKET_CONCURRENCY'],
        [{ MATSSOCKET_QUEUE_PREFIX: 'a b' }, 'MATSSOCKET_QUEUE_PREFIX'],
        [{ LOG_LEVEL: 'verbose' }, 'LOG_LEVEL'],
      ];
      for (const [env, field] of cases) {
        expect(configError(() => readCompatServerConfig(env)).field, JSON.stringify(env)).to.equal(field);
      }
    });
  });

  describe('readMainNodeConfig', () => {
    it('defaults: 127.0.0.1:8080, SQLite file data/matssocket.sqlite, node <hostname>-8080, ticker 5 s', () => {
      const config = readMainNodeConfig({});
      const host = hostname().replace(/[^A-Za-z0-9._-]/g, '_');
      expect(config).to.deep.include({
        host: '127.0.0.1',
        port: 8080,
        nodeName: `${host}-8080`,
        tickerIntervalMs: 5000,
        amqpUrl: undefined,
      });
      expect(config.db).to.deep.equal({ dialect: 'sqlite', target: 'data/matssocket.sqlite' });
    });

    it('PORT=0 names the node after the pid; MATSSOCKET_NODE_NAME overrides', () => {
      expect(readMainNodeConfig({ PORT: '0' }, 4242).nodeName).to.match(/-pid4242$/);
      expect(readMainNodeConfig({ MATSSOCKET_NODE_NAME: 'node-a' }).nodeName).to.equal('node-a');
    });

    it('admin: no token (generated at start) and no extra hosts by default; both from the environment', () => {
      expect(readMainNodeConfig({})).to.deep.include({ adminToken: undefined, adminAllowedHosts: [] });
      const config = readMainNodeConfig({
        MATSSOCKET_ADMIN_TOKEN: ' 0123456789abcdef ',
        MATSSOCKET_ADMIN_HOSTS: 'Admin.Example, [fd00::1],',
      });
      expect(config).to.deep.include({
        adminToken: '0123456789abcdef',
        adminAllowedHosts: ['admin.example', '[fd00::1]'],
      });
    });

    it('names the offending variable', () => {
      expect(configError(() => readMainNodeConfig({ PORT: 'http' })).field).to.equal('PORT');
      expect(configError(() => readMainNodeConfig({ MATSSOCKET_NODE_NAME: 'a b' })).field).to.equal(
        'MATSSOCKET_NODE_NAME',
      );
      expect(configError(() => readMainNodeConfig({ DEMO_TICKER_INTERVAL_MS: '-1' })).field).to.equal(
        'DEMO_TICKER_INTERVAL_MS',
      );
      expect(configError(() => readMainNodeConfig({ MATSSOCKET_ADMIN_TOKEN: 'too-short' })).field).to.equal(
        'MATSSOCKET_ADMIN_TOKEN',
      );
      expect(
        configError(() => readMainNodeConfig({ MATSSOCKET_ADMIN_HOSTS: 'a.example:80' })).field,
      ).to.equal('MATSSOCKET_ADMIN_HOSTS');
    });
  });
});
