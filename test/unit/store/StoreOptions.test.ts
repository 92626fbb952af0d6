import { expect } from 'chai';
import { ConfigError, ErrorCode } from '../../../src/errors.ts';
import { silentLogger } from '../../../src/logging.ts';
import { resolveStoreOptions, type StoreOptions } from '../../../src/store/StoreOptions.ts';

describe('resolveStoreOptions()', () => {
  it('applies the documented defaults (docs/store.md 9)', () => {
    const o = resolveStoreOptions({ nodeName: 'node-1' }, 'mysql');
    expect(o).to.deep.include({
      nodeName: 'node-1',
      maxDeliveryAttempts: 10,
      inClauseChunk: 500,
      migrate: false,
      migrationsTableName: 'knex_migrations_matssocket',
      matsMigrationsTableName: 'knex_migrations_mats',
      transactionAttempts: 3,
      topicReplayMaxPerTopic: 1000,
      topicIdleRetentionMs: 604_800_000,
      scavengeIntervalMs: 5_400_000,
      scavengeOverlapMs: 600_000,
      scavengeMinAgeMs: 600_000,
      connectTimeoutMs: 10_000,
      nodeLivelinessIntervalMs: 5_000,
      nodeDeadAfterMs: 20_000,
    });
    expect(o.now).to.equal(Date.now);
    expect(o.logger).to.equal(silentLogger.child({}));
  });

  it('defaults migrate to true only for embedded SQLite', () => {
    expect(resolveStoreOptions({ nodeName: 'n' }, 'sqlite').migrate).to.be.true;
    expect(resolveStoreOptions({ nodeName: 'n' }, 'postgres').migrate).to.be.false;
    expect(resolveStoreOptions({ nodeName: 'n', migrate: true }, 'postgres').migrate).to.be.true;
    expect(resolveStoreOptions({ nodeName: 'n', migrate: false }, 'sqlite').migrate).to.be.false;
  });

  it('takes an injected clock', () => {
    expect(resolveStoreOptions({ nodeName: 'n', now: () => 42 }, 'sqlite').now()).to.equal(42);
  });

  const invalid: [string, Record<string, unknown>][] = [
    ['nodeName', {}],
    ['nodeName', { nodeName: '' }],
    ['nodeName', { nodeName: ' padded ' }],
    ['nodeName', { nodeName: 'x'.repeat(256) }],
    ['nodeName', { nodeName: 7 }],
    ['maxDeliveryAttempts', { maxDeliveryAttempts: 0 }],
    ['inClauseChunk', { inClauseChunk: 1.5 }],
    ['inClauseChunk', { inClauseChunk: 0 }],
    ['migrate', { migrate: 'yes' }],
    ['migrationsTableName', { migrationsTableName: 'drop table;' }],
    ['matsMigrationsTableName', { matsMigrationsTableName: '' }],
    ['transactionAttempts', { transactionAttempts: 0 }],
    ['topicReplayMaxPerTopic', { topicReplayMaxPerTopic: -1 }],
    ['scavengeIntervalMs', { scavengeIntervalMs: 0 }],
    ['scavengeOverlapMs', { scavengeOverlapMs: -5 }],
    ['connectTimeoutMs', { connectTimeoutMs: Number.NaN }],
    ['now', { now: 123 }],
    ['logger', { logger: {} }],
  ];
  for (const [field, input] of invalid) {
    it(`rejects an invalid ${field}: ${JSON.stringify(input)}`, () => {
      const options = { nodeName: 'n', ...input } as unknown as StoreOptions;
      if (!('nodeName' in input) && field === 'nodeName') delete (options as Partial<StoreOptions>).nodeName;
      expect(() => resolveStoreOptions(options, 'mysql'))
        .to.throw(ConfigError)
        .that.satisfies((e: ConfigError) => e.field === field && e.code === ErrorCode.CONFIG_INVALID);
    });
  }
});
