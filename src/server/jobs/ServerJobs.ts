import type { ReplyTerminatorInvoker, TerminatorOutcome } from '../inbound/ReplyTerminatorInvoker.ts';
import type { AfterCommit } from '../messaging/AfterCommit.ts';
import type { Forwarder } from '../outbound/Forwarder.ts';
import type { ServerCore } from '../ServerCore.ts';
import { JobScheduler } from './JobScheduler.ts';

/** Job names, for `runJobNow`. */
export const JobName = {
  liveliness: 'liveliness',
  sessionTimeout: 'sessionTimeout',
  scavenger: 'scavenger',
  selfHeal: 'selfHeal',
  requestTimeout: 'requestTimeout',
  topicPurge: 'topicPurge',
  dlqRetention: 'dlqRetention',
  outboxDepth: 'outboxDepth',
} as const;

export type JobName = (typeof JobName)[keyof typeof JobName];

/** Creates the scheduler with the node's jobs (docs/store.md section 8, BR-3, BR-4). */
export function createServerJobs(
  core: ServerCore,
  forwarder: Forwarder,
  invoker: ReplyTerminatorInvoker,
  afterCommit: AfterCommit,
): JobScheduler {
  const o = core.options.jobs;
  const store = core.store;
  const scheduler = new JobScheduler(core.logger.child({ component: 'jobs' }));
  const liveSessions = (): string[] =>
    core.registry
      .connections()
      .filter((c) => c.established)
      .map((c) => c.sessionId!);

  scheduler.add(JobName.liveliness, o.livelinessIntervalMs, async () => {
    const live = liveSessions();
    if (live.length > 0) await store.notifySessionLiveliness(live);
  });

  scheduler.add(JobName.sessionTimeout, o.timeoutCheckIntervalMs, async () => {
    const timedOut = await store.timeoutSessions(core.now() - o.sessionTimeoutMs);
    for (const sessionId of timedOut) {
      core.registry.get(sessionId)?.close(4000, 'Server Side: session timed out', 'none');
      core.metrics.sessionRemoved('TIMEOUT', core.registry.size);
      core.events.emit('sessionRemoved', { type: 'TIMEOUT', sessionId });
      core.logger.info({ sessionId }, 'MatsSocket session timed out');
    }
  });

  scheduler.add(JobName.scavenger, o.scavengeIntervalMs, async () => {
    const n = await store.scavengeSessionRemnants();
    if (n > 0) core.logger.info({ rows: n }, 'scavenged orphaned inbox/outbox rows');
  });

  scheduler.add(JobName.selfHeal, o.selfHealIntervalMs, async () => {
    const now = core.now();
    const live = liveSessions();
    if (live.length > 0) {
      for (const sessionId of await store.hasPendingOutbox(live, now - o.selfHealMinAgeMs)) {
        if (!forwarder.isRunning(sessionId)) {
          core.logger.info({ sessionId }, 'self-heal: pending outbox messages without a poke; forwarding');
          forwarder.poke(sessionId);
        }
      }
    }
    const liveSet = new Set(live);
    for (const reg of await store.getSessionsRegisteredToThisNode(now - o.selfHealStaleRegistrationMs)) {
      if (liveSet.has(reg.sessionId) || core.registry.get(reg.sessionId)) continue;
      await store.deregisterSessionFromThisNode(reg.sessionId, reg.connectionId);
    }
  });

  scheduler.add(JobName.requestTimeout, o.requestTimeoutSweepMs, async () => {
    for (;;) {
      const expired = await store.getExpiredRequestCorrelations(core.now(), o.requestTimeoutSweepBatch);
      let failed = 0;
      for (const e of expired) {
        // One correlation that fails (its terminator, a database error) must not stop the others' timeouts: it
        // stays and is tried again next run.
        const outcome: TerminatorOutcome | undefined = await store
          .transaction(async (trx) => {
            const corr = await store.getAndDeleteRequestCorrelation(e.sessionId, e.smid, trx);
            if (!corr) return undefined;
            // The client must never receive an expired request.
            await store.outboxMessagesComplete(e.sessionId, [e.smid], trx);
            return invoker.invokeInTrx(trx, corr, {
              messageType: 'TIMEOUT',
              message: undefined,
              traceId: corr.traceId,
              cmid: undefined,
              description: undefined,
              conn: core.registry.get(e.sessionId),
            });
          }, 'request timeout')
          .catch((err: unknown) => {
            failed++;
            core.logger.warn(
              { err, sessionId: e.sessionId, smid: e.smid },
              'request timeout failed; tried again later',
            );
            return undefined;
          });
        if (outcome) afterCommit.run(outcome);
      }
      // A batch of nothing but failures would be read again at once: leave it to the next run.
      if (expired.length < o.requestTimeoutSweepBatch || failed === expired.length) return;
    }
  });

  if (core.options.topicReplayRetentionMs > 0) {
    scheduler.add(JobName.topicPurge, o.topicPurgeIntervalMs, async () => {
      await store.purgeTopicLog(core.now() - core.options.topicReplayRetentionMs);
    });
  }

  if (o.dlqRetentionMs > 0) {
    scheduler.add(JobName.dlqRetention, o.dlqRetentionIntervalMs, async () => {
      const n = await store.purgeDeadLetters({ olderThanTs: core.now() - o.dlqRetentionMs });
      if (n > 0) core.logger.info({ purged: n }, 'dead letters past retention purged');
    });
  }

  scheduler.add(JobName.outboxDepth, o.outboxDepthIntervalMs, async () => {
    const live = liveSessions();
    const depths = live.length > 0 ? await store.getOutboxDepths(live) : new Map<string, number>();
    let total = 0;
    for (const n of depths.values()) total += n;
    core.metrics.outboxDepth(total);
  });

  return scheduler;
}
