import { expect } from 'chai';
import knexFactory from 'knex';
import { ConfigError } from '../../../src/errors.ts';
import { fakeTransport } from './fakeTransport.ts';
import {
  resolveMatsFactoryOptions,
  resolveStageOptions,
  type MatsFactoryOptions,
} from '../../../src/mats/MatsFactoryOptions.ts';

const base: MatsFactoryOptions = {
  appName: 'App',
  appVersion: '1',
  nodeName: 'n1',
  transport: fakeTransport,
};

describe('resolveMatsFactoryOptions', () => {
  it('applies the defaults of section 8', () => {
    const o = resolveMatsFactoryOptions(base);
    expect(o).to.include({
      queuePrefix: 'mats.',
      commonGroupId: 'App',
      maxDeliveryAttempts: 6,
      retryDelayMs: 250,
      databaseOutageRetryMs: 60_000,
      outbox: false,
      inbox: false,
      outboxSweeper: false,
      outboxSweepIntervalMs: 1000,
      outboxSweepMinAgeMs: 2000,
      outboxSweepBatchSize: 100,
      outboxDeleteWindowMs: 25,
      outboxLeaseMs: 30_000,
      outboxMaxAttempts: 10,
      inboxRetentionMs: 24 * 3600 * 1000,
      inboxPurgeIntervalMs: 600_000,
      compressionThresholdBytes: 1024,
      maxStackHeight: 35,
      maxTotalCallNumber: 200,
      futurizerMaxOutstanding: 50_000,
    });
    expect(o.concurrency).to.be.within(1, 10);
    expect(o.interactiveConcurrency).to.equal(o.concurrency);
  });

  for (const [field, patch] of [
    ['appName', { appName: '' }],
    ['nodeName', { nodeName: undefined }],
    ['transport', { transport: {} }],
    ['queuePrefix', { queuePrefix: 'a:b' }],
    ['commonGroupId', { commonGroupId: 'bad id' }],
    ['concurrency', { concurrency: 0 }],
    ['interactiveConcurrency', { interactiveConcurrency: 1.5 }],
    ['maxDeliveryAttempts', { maxDeliveryAttempts: 0 }],
    ['retryDelayMs', { retryDelayMs: -1 }],
    ['outboxDeleteWindowMs', { outboxDeleteWindowMs: -1 }],
    ['outboxLeaseMs', { outboxLeaseMs: 0 }],
    ['outboxMaxAttempts', { outboxMaxAttempts: 0.5 }],
    ['outbox', { outbox: true }],
    ['inbox', { inbox: true }],
    ['outboxSweeper', { outboxSweeper: true }],
    ['initiateTraceIdModifier', { initiateTraceIdModifier: 'x' }],
  ] as const) {
    it(`names the field '${field}' in the ConfigError`, () => {
      expect(() => resolveMatsFactoryOptions({ ...base, ...patch } as MatsFactoryOptions))
        .to.throw(ConfigError)
        .with.property('field', field);
    });
  }

  it('the inbox implies the outbox; inbox without outbox is refused; stage options inherit', async () => {
    const db = knexFactory({
      client: 'better-sqlite3',
      connection: { filename: ':memory:' },
      useNullAsDefault: true,
    });
    try {
      const o = resolveMatsFactoryOptions({ ...base, db, inbox: true, concurrency: 4 });
      expect(o.outbox).to.equal(true);
      expect(o.outboxSweeper).to.equal(true);
      expect(() => resolveMatsFactoryOptions({ ...base, db, inbox: true, outbox: false }))
        .to.throw(ConfigError)
        .with.property('field', 'outbox');
      const s = resolveStageOptions(o, { concurrency: 2, priority: 3 }, { retryDelayMs: 5 });
      expect(s).to.deep.equal({
        concurrency: 2,
        interactiveConcurrency: 2,
        inbox: true,
        outbox: true,
        maxDeliveryAttempts: 6,
        retryDelayMs: 5,
        priority: 3,
      });
      expect(resolveStageOptions(o, undefined, undefined).priority).to.equal(0);
      expect(() => resolveStageOptions(o, { priority: 1.5 }, undefined))
        .to.throw(ConfigError)
        .with.property('field', 'priority');
      const noDb = resolveMatsFactoryOptions(base);
      expect(() => resolveStageOptions(noDb, undefined, { outbox: true }))
        .to.throw(ConfigError)
        .with.property('field', 'outbox');
    } finally {
      await db.destroy();
    }
  });
});
