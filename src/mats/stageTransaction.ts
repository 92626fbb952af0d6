import { performance } from 'node:perf_hooks';
import type { Delivery, OutgoingMessage } from '../broker/Transport.ts';
import type { StoredOutgoingMessage } from '../store/MatsMessageStore.ts';
import { causedByUniqueViolation, isDatabaseUnavailable } from '../store/sqlErrors.ts';
import { IncomingFlow } from './EnvelopeBuilder.ts';
import { LazyTransaction } from './LazyTransaction.ts';
import type { MatsEnvelope } from './MatsEnvelope.ts';
import { MatsRefuseMessageError } from './MatsErrors.ts';
import type { MatsRuntime } from './MatsRuntime.ts';
import { OutgoingCollector } from './OutgoingCollector.ts';
import { runStageLambdas } from './runStageLambdas.ts';
import type { StageRun } from './StageContextImpl.ts';
import type { StageDefinition } from './StageDefinition.ts';
import type { RunLog } from './StageRunReport.ts';

/** @internal What a stage transaction needs besides the message. */
export interface StageTransactionScope {
  readonly runtime: MatsRuntime;
  readonly stage: StageDefinition;
  /** The inbox's stage key (per node for topics). */
  readonly inboxKey: string;
  /** True once the stop grace period has passed: the run rolls back instead of committing. */
  readonly aborting: () => boolean;
  /** A pause that `stop()` cuts short. */
  readonly sleep: (ms: number) => Promise<void>;
}

/** @internal How a stage transaction ended. */
export type StageTransactionResult =
  /** Committed (or nothing to commit): `outgoing` are the messages to publish now. */
  | { kind: 'committed'; run: StageRun; outgoing: OutgoingMessage[] }
  /**
   * The message was processed and committed before: `inbox` when the inbox had it (the lambda was skipped),
   * `outbox` when this run's outbox rows were already there (an earlier commit succeeded but its outcome was lost).
   * `rows` are the outbox rows still unsent, to publish again.
   */
  | {
      kind: 'duplicate';
      via: 'inbox' | 'outbox';
      rows: Array<Pick<StoredOutgoingMessage, 'matsMessageId' | 'message'>>;
    }
  /** Rolled back: `refusal` when the message can never succeed (dead-letter at once), else a retryable failure. */
  | { kind: 'failed'; error: unknown; refusal: Error | undefined }
  /** The factory stopped while the database was unreachable: requeue. */
  | { kind: 'stopped'; error: unknown };

/** Thrown into a run that is still going when the stop grace period ends; the message is requeued. */
class StopAbort extends Error {
  constructor() {
    super('Factory stopping: grace period exceeded, rolling back');
  }
}

/**
 * The transactional part of a stage run (`docs/mats-semantics.md` 2.1): inbox → lambda (with its nextDirect chain) →
 * outbox → commit, rolled back on any failure. While the database is unreachable (`isDatabaseUnavailable`) the
 * run is repeated with backoff for up to `databaseOutageRetryMs` without spending a delivery attempt. The
 * lambda and commit timings go into `fields`, the run's log line.
 */
export async function runStageTransaction(
  scope: StageTransactionScope,
  delivery: Delivery,
  envelope: MatsEnvelope,
  attempt: number,
  receivedPerf: number,
  fields: RunLog,
): Promise<StageTransactionResult> {
  const { runtime, stage } = scope;
  let outageWaitedMs = 0;
  for (let outageRound = 0; ; outageRound++) {
    const run: StageRun = {
      runtime,
      incoming: new IncomingFlow(envelope),
      collector: new OutgoingCollector(
        stage.source === 'topic'
          ? `${envelope.id}|${stage.stageId}|${runtime.options.nodeName}`
          : `${envelope.id}|${stage.stageId}`,
      ),
      tx: new LazyTransaction(runtime.options.db),
      deliveryAttempt: attempt,
      brokerMessageId: delivery.properties.messageId,
      traceProperties: envelope.tp ? { ...envelope.tp } : {},
      overflow: undefined,
    };
    /** This run's outbox rows (their ids are derived from the incoming message: the same in every run). */
    let ownRows: Array<{ matsMessageId: string; message: OutgoingMessage }> | undefined;
    try {
      if (stage.options.inbox) {
        const trx = await run.tx.get();
        const fresh = await runtime.store!.insertInbox(trx, scope.inboxKey, envelope.id, runtime.now());
        if (!fresh) {
          const rows = await runtime.store!.outboxByCause(trx, envelope.id);
          await run.tx.commit();
          return { kind: 'duplicate', via: 'inbox', rows };
        }
      }
      const tLambda = performance.now();
      const lambdas = runStageLambdas(run, stage, envelope);
      if (lambdas instanceof Promise) await lambdas;
      fields.userLambdaMs = performance.now() - tLambda;
      if (run.overflow) throw run.overflow;
      if (scope.aborting()) throw new StopAbort();

      const pending = run.collector.messages;
      const finalized = runtime.finalize(pending, performance.now() - receivedPerf);
      const outgoing = finalized instanceof Promise ? await finalized : finalized;
      const tCommit = performance.now();
      if (stage.options.outbox && outgoing.length > 0) {
        const trx = await run.tx.get();
        ownRows = outgoing.map((message, i) => ({ matsMessageId: pending[i]!.matsMessageId, message }));
        await runtime.store!.insertOutbox(
          trx,
          outgoing.map((message, i) => ({
            message,
            matsMessageId: pending[i]!.matsMessageId,
            causeMessageId: pending[i]!.causeMessageId,
          })),
        );
      }
      if (run.tx.started) {
        await run.tx.commit();
        fields.dbCommitMs = performance.now() - tCommit;
      }
      return { kind: 'committed', run, outgoing };
    } catch (error) {
      if (run.tx.started) await run.tx.rollback();
      if (ownRows && causedByUniqueViolation(error)) {
        const present = await ownRowsCommittedBefore(runtime, ownRows).catch(() => undefined);
        if (present) return { kind: 'duplicate', via: 'outbox', rows: present };
      }
      const refusal = run.overflow ?? (error instanceof MatsRefuseMessageError ? error : undefined);
      const budget = runtime.options.databaseOutageRetryMs;
      if (refusal || outageWaitedMs >= budget || scope.aborting() || !isDatabaseUnavailable(error)) {
        return { kind: 'failed', error, refusal };
      }
      const pauseMs = outagePauseMs(stage.options.retryDelayMs, outageRound, budget - outageWaitedMs);
      const outageLog = { ...fields, err: error, waitedMs: outageWaitedMs, pauseMs };
      const msg =
        'Mats stage: database unreachable; keeping the message and trying again (not a delivery attempt)';
      if (outageRound === 0) stage.logger.warn(outageLog, msg);
      else stage.logger.debug(outageLog, msg);
      await scope.sleep(pauseMs);
      outageWaitedMs += pauseMs;
      if (scope.aborting()) return { kind: 'stopped', error };
    }
  }
}

/** Backoff while the database is unreachable: from max(50, retryDelayMs) doubling to 2 s, within the budget left. */
function outagePauseMs(retryDelayMs: number, round: number, budgetLeftMs: number): number {
  return Math.max(1, Math.min(Math.max(50, retryDelayMs) * 2 ** Math.min(round, 10), 2000, budgetLeftMs));
}

/**
 * The rows of `own` already in the outbox, if any: only an earlier run of this same message can have written
 * these ids, so it committed, though its caller saw the commit fail (e.g. the connection dropped during COMMIT).
 * That run's effects stand; counting this one as a failure would dead-letter a message whose next stage already
 * got (or will get, through the sweeper) its output.
 */
async function ownRowsCommittedBefore(
  runtime: MatsRuntime,
  own: ReadonlyArray<{ matsMessageId: string; message: OutgoingMessage }>,
): Promise<Array<{ matsMessageId: string; message: OutgoingMessage }> | undefined> {
  const store = runtime.store!;
  const ids = await store.existingOutboxIds(
    store.db,
    own.map((r) => r.matsMessageId),
  );
  return ids.size === 0 ? undefined : own.filter((r) => ids.has(r.matsMessageId));
}
