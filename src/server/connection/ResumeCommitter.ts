import type { ResumeOutcome, SessionRegistrationInput } from '../../store/storeTypes.ts';
import { GroupCommitter } from '../messaging/GroupCommitter.ts';
import type { ServerCore } from '../ServerCore.ts';

/** Resume batches committing at the same time at most (each holds one pooled connection). */
const RESUME_CONCURRENCY = 4;

/** A store outcome, or the failure of this session's resume (→ close 1011). */
export type ResumeResult = ResumeOutcome | { kind: 'failed'; error: unknown };

const committers = new WeakMap<ServerCore, GroupCommitter<SessionRegistrationInput, ResumeResult>>();

/**
 * The node's group committer of HELLO resumes: resumes arriving within `groupCommitWindowMs` (up to
 * `groupCommitMaxItems`) go to the store in one transaction ({@link ClusterStoreAndForward.registerResumedSessions}),
 * so a reconnect storm of thousands of sessions is not a commit per session. A failed batch is retried session by
 * session, so one failure cannot fail the others. Created on first use; idle it holds no timer.
 */
export function resumeCommitterOf(core: ServerCore): GroupCommitter<SessionRegistrationInput, ResumeResult> {
  let committer = committers.get(core);
  if (!committer) {
    const max = core.options.limits.maxSessionsPerUser;
    // The resumed sessions' outbox is read in the same transaction: the first forward round needs no fetch.
    const fetchOutbox = core.options.limits.maxMessagesPerForwardRound;
    committer = new GroupCommitter<SessionRegistrationInput, ResumeResult>({
      windowMs: core.options.timings.groupCommitWindowMs,
      maxItems: core.options.timings.groupCommitMaxItems,
      concurrency: RESUME_CONCURRENCY,
      commit: async (items): Promise<ResumeResult[]> => {
        try {
          return await core.store.registerResumedSessions(items, max, fetchOutbox);
        } catch (err) {
          if (items.length === 1) return [{ kind: 'failed', error: err }];
          const singles = await Promise.allSettled(
            items.map((item) => core.store.registerResumedSessions([item], max, fetchOutbox)),
          );
          return singles.map((s) =>
            s.status === 'fulfilled' ? s.value[0]! : { kind: 'failed', error: s.reason as unknown },
          );
        }
      },
    });
    committers.set(core, committer);
  }
  return committer;
}
