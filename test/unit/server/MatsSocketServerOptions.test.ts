import { expect } from 'chai';
import { ConfigError } from '../../../src/errors.ts';
import type { MatsFactory } from '../../../src/mats/MatsFactory.ts';
import {
  resolveServerOptions,
  type MatsSocketServerOptions,
} from '../../../src/server/MatsSocketServerOptions.ts';
import type { ClusterStoreAndForward } from '../../../src/store/ClusterStoreAndForward.ts';

const base = (): MatsSocketServerOptions => ({
  nodeName: 'node1',
  matsFactory: {} as MatsFactory,
  store: { options: { nodeName: 'node1' } } as ClusterStoreAndForward,
  authenticationPlugin: () => ({
    initialAuthentication: (ctx) => ctx.invalidAuthentication('no'),
    reevaluateAuthentication: (ctx) => ctx.invalidAuthentication('no'),
  }),
});

describe('resolveServerOptions', () => {
  it('applies the spec defaults', () => {
    const o = resolveServerOptions(base());
    expect(o.instanceName).to.equal('MatsSocket');
    expect(o.limits).to.include({
      preHelloMaxFrameBytes: 20 * 1024,
      maxFrameBytes: 50 * 1024 * 1024,
      maxSessionsPerUser: 75,
      maxTopicsPerConnection: 1500,
      maxTopicIdLength: 256,
      reauthHoldMaxEnvelopes: 100,
      reauthHoldMaxSubs: 3000,
      reauthMaxWithoutProgress: 500,
      maxMessagesPerForwardRound: 20,
      maxDeliveryAttempts: 10,
      maxSmidAttempts: 100,
      envelopesRecordedPerSession: 200,
    });
    expect(o.timings).to.include({
      helloTimeoutMs: 5000,
      idleTimeoutMs: 75_000,
      wsPingIntervalMs: 25_000,
      ackDelayMs: 4,
      requestAckDelayMs: 100,
      instaResolveDelayMs: 2,
      instaRejectDelayMs: 4,
      ack2DelayMs: 25,
      subReplyDelayMs: 2,
      pubDelayMs: 10,
      forwardWriteFailurePauseMs: 2500,
      reconnectHealDelayMs: 500,
      storeBatchWindowMs: 25,
      databaseOutageRetryMs: 60_000,
      serverRequestTimeoutMs: 600_000,
    });
    expect(o.jobs).to.include({
      livelinessIntervalMs: 54_000,
      timeoutCheckIntervalMs: 300_000,
      sessionTimeoutMs: 259_200_000,
      scavengeIntervalMs: 5_400_000,
      selfHealIntervalMs: 30_000,
      selfHealMinAgeMs: 10_000,
      requestTimeoutSweepMs: 5000,
      topicPurgeIntervalMs: 60_000,
      dlqRetentionMs: 2_592_000_000,
    });
    expect(o.topicReplayRetentionMs).to.equal(300_000);
    expect(o.deadLetterOnNack).to.equal(false);
    expect(o.nodeReplyQueues).to.equal(8);
    expect(o.compression).to.deep.equal({ thresholdBytes: 1024 });
    expect(resolveServerOptions({ ...base(), compression: false }).compression).to.equal(false);
  });

  const invalid: [string, Partial<MatsSocketServerOptions>][] = [
    ['nodeName', { nodeName: '' }],
    ['instanceName', { instanceName: 'has space' }],
    ['authenticationPlugin', { authenticationPlugin: 'x' as never }],
    ['replyHandlerConcurrency', { replyHandlerConcurrency: 2 }],
    ['nodeReplyQueues', { nodeReplyQueues: 65 }],
    ['nodeReplyQueues', { nodeReplyQueues: -1 }],
    ['limits.maxFrameBytes', { limits: { maxFrameBytes: 0 } }],
    ['timings.ackDelayMs', { timings: { ackDelayMs: -1 } }],
    ['jobs.enabled', { jobs: { enabled: 'yes' as never } }],
    ['limits.bogus', { limits: { bogus: 1 } as never }],
    ['deadLetterOnNack', { deadLetterOnNack: 1 as never }],
    ['compression', { compression: true as never }],
    ['compression.thresholdBytes', { compression: { thresholdBytes: -1 } }],
  ];
  for (const [field, patch] of invalid) {
    it(`throws ConfigError naming '${field}'`, () => {
      expect(() => resolveServerOptions({ ...base(), ...patch }))
        .to.throw(ConfigError)
        .with.property('field', field);
    });
  }

  it("requires the store's node name", () => {
    expect(() => resolveServerOptions({ ...base(), nodeName: 'other' }))
      .to.throw(ConfigError)
      .with.property('field', 'nodeName');
  });
});
