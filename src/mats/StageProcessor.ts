import { performance } from 'node:perf_hooks';
import type { Delivery, OutgoingMessage } from '../broker/Transport.ts';
import { runOutsideStageContext } from './ambientContext.ts';
import { deadLetterMessage, describeError } from './DeadLetter.ts';
import { IncomingFlow } from './EnvelopeBuilder.ts';
import { isDatabaseUnavailable } from '../store/sqlErrors.ts';
import { LazyTransaction } from './LazyTransaction.ts';
import type { MatsEnvelope } from './MatsEnvelope.ts';
import { MatsRefuseMessageError } from './MatsErrors.ts';
import { sanitizeId } from './matsIds.ts';
import type { MatsRuntime } from './MatsRuntime.ts';
import { decodeDelivery, MatsHeader } from './MatsWire.ts';
import { OutgoingCollector } from './OutgoingCollector.ts';
import type { StageRun } from './StageContextImpl.ts';
import { runStageLambdas } from './runStageLambdas.ts';
import type { StageDefinition } from './StageDefinition.ts';

/** @internal How a processor cooperates with its endpoint's lifecycle. */
export interface ProcessorLifecycle {
  /** True once the stop grace period has passed: unfinished runs roll back instead of committing. */
  readonly aborting: boolean;
  /** A pause that `stop()` cuts short. */
  sleep(ms: number): Promise<void>;
  /** The runs in progress, with their start time (epoch ms), for the slow-stage warning. */
  readonly running: Set<RunningStage>;
}

/** @internal A stage run in progress. */
export interface RunningStage {
  startedAt: number;
  fields: object;
  warned?: boolean;
}

/** Thrown into a run that is still going when the stop grace period ends; the message is requeued. */
class StopAbort extends Error {
  constructor() {
    super('Factory stopping: grace period exceeded, rolling back');
  }
}

type Outcome = 'ok' | 'retry' | 'dlq' | 'duplicate' | 'expired' | 'error';

// The completion line of a normal run is per message: debug (mats-semantics.md 7), so info stays readable at load.
const LOG_LEVEL: Record<Outcome, 'debug' | 'warn' | 'error'> = {
  ok: 'debug',
  duplicate: 'debug',
  expired: 'debug',
  retry: 'warn',
  dlq: 'error',
  error: 'error',
};

interface RunLog {
  traceId?: string;
  stageId: string;
  stageIndex: number;
  matsMessageIdIn?: string;
  matsMessageIdsOut?: string[];
  deliveryAttempt: number;
  initiatorId?: string;
  initiatingApp?: string;
  fromStageId?: string;
  callType?: string;
  outcome?: Outcome;
  totalMs?: number;
  userLambdaMs?: number;
  dbCommitMs?: number;
  confirmMs?: number;
}

/**
 * Processes the deliveries of one stage in the transactional order of `mats-semantics.md` 2.1: decode → attempt
 * check → deadline → inbox → lambda (with nextDirect chain) → outbox → DB commit → publish with confirms → ack →
 * doAfterCommit; failures roll back and are retried with `retryDelayMs`, dead-lettered at the last attempt, or
 * dead-lettered at once when refused (section 2.2 and 3).
 */
export class StageProcessor {
  readonly #runtime: MatsRuntime;
  readonly #stage: StageDefinition;
  readonly #lifecycle: ProcessorLifecycle;
  readonly #inboxKey: string;
  /** Metric labels, built once (observations happen per message). */
  readonly #labels: Readonly<Record<string, string>>;
  readonly #outcomeLabels: Readonly<Record<Outcome, Readonly<Record<string, string>>>>;

  constructor(runtime: MatsRuntime, stage: StageDefinition, lifecycle: ProcessorLifecycle) {
    this.#runtime = runtime;
    this.#stage = stage;
    this.#lifecycle = lifecycle;
    this.#labels = { app: runtime.options.appName, stage: stage.stageId, initiator: '' };
    const o = (outcome: Outcome): Record<string, string> => ({ ...this.#labels, outcome });
    this.#outcomeLabels = {
      ok: o('ok'),
      retry: o('retry'),
      dlq: o('dlq'),
      duplicate: o('duplicate'),
      expired: o('expired'),
      error: o('error'),
    };
    // Every node receives its own copy of a topic message (same id): de-duplicate per node there.
    this.#inboxKey =
      stage.source === 'topic' ? sanitizeId(`${stage.stageId}@${runtime.options.nodeName}`) : stage.stageId;
  }

  /**
   * Handles one delivery to its end (ack, reject or dead-letter) and then calls `done` (exactly once). Never throws.
   */
  handle(delivery: Delivery, done: () => void): void {
    const t0 = performance.now();
    const stage = this.#stage;
    const attempt = delivery.deliveryCount + 1;
    const fields: RunLog = { stageId: stage.stageId, stageIndex: stage.index, deliveryAttempt: attempt };
    // The endpoint warns about runs exceeding slowStageWarnMs (one shared timer, not one per message).
    const running = { startedAt: Date.now(), fields };
    const lifecycle = this.#lifecycle;
    lifecycle.running.add(running);
    // Inline callbacks (no named closure per message).
    this.#handle(delivery, attempt, fields, t0).then(
      () => {
        lifecycle.running.delete(running);
        done();
      },
      (err: unknown) => {
        // Defensive: anything escaping the pipeline must not leave the delivery hanging.
        stage.logger.error({ ...fields, err }, 'Mats stage processing failed unexpectedly; requeueing');
        delivery.reject(true);
        lifecycle.running.delete(running);
        done();
      },
    );
  }

  async #handle(delivery: Delivery, attempt: number, fields: RunLog, t0: number): Promise<void> {
    const runtime = this.#runtime;
    const stage = this.#stage;
    const max = stage.options.maxDeliveryAttempts;

    let envelope: MatsEnvelope;
    try {
      const decoded = decodeDelivery(delivery);
      envelope = decoded instanceof Promise ? await decoded : decoded;
    } catch (err) {
      await this.#divert(delivery, err, true, attempt, undefined, 'undecodable', fields, t0);
      return;
    }
    fields.traceId = envelope.traceId;
    fields.matsMessageIdIn = envelope.id;
    fields.initiatorId = envelope.init.id;
    fields.initiatingApp = envelope.init.app;
    fields.fromStageId = envelope.call.from;
    fields.callType = envelope.call.type;

    if (attempt > max) {
      const error = new Error(
        `Delivery attempt ${attempt} exceeds maxDeliveryAttempts ${max}: earlier attempts crashed the consumer`,
      );
      await this.#divert(delivery, error, false, attempt, envelope.dlqCount, 'attempts', fields, t0);
      return;
    }

    const expires = delivery.properties.headers[MatsHeader.EXPIRES];
    if (typeof expires === 'number' && expires <= runtime.now()) {
      delivery.ack();
      runtime.instruments.expiredDropped.inc({ app: runtime.options.appName, stage: stage.stageId });
      this.#finish(fields, 'expired', t0, 'Mats message expired before processing; dropped');
      return;
    }

    if (this.#lifecycle.aborting) {
      delivery.reject(true);
      return;
    }

    let run: StageRun;
    let outgoing: OutgoingMessage[];
    // Time spent waiting out an unreachable database, which does not count as delivery attempts.
    let outageWaitedMs = 0;
    for (let outageRound = 0; ; outageRound++) {
      const incoming = new IncomingFlow(envelope);
      run = {
        runtime,
        incoming,
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
      const receivedPerf = t0;
      try {
        if (stage.options.inbox) {
          const trx = await run.tx.get();
          const fresh = await runtime.store!.insertInbox(trx, this.#inboxKey, envelope.id, runtime.now());
          if (!fresh) {
            await this.#handleDuplicate(delivery, run, fields, t0);
            return;
          }
        }
        const tLambda = performance.now();
        const lambdas = runStageLambdas(run, stage, envelope);
        if (lambdas instanceof Promise) await lambdas;
        fields.userLambdaMs = performance.now() - tLambda;
        if (run.overflow) throw run.overflow;
        if (this.#lifecycle.aborting) throw new StopAbort();

        const pending = run.collector.messages;
        const finalized = runtime.finalize(pending, performance.now() - receivedPerf);
        outgoing = finalized instanceof Promise ? await finalized : finalized;
        const tCommit = performance.now();
        if (stage.options.outbox && outgoing.length > 0) {
          const trx = await run.tx.get();
          await runtime.store!.insertOutbox(
            trx,
            outgoing.map((message, i) => ({
              message,
              matsMessageId: pending[i]!.matsMessageId,
              causeMessageId: pending[i]!.causeMessageId,
            })),
            runtime.now(),
          );
        }
        if (run.tx.started) {
          await run.tx.commit();
          fields.dbCommitMs = performance.now() - tCommit;
        }
        break;
      } catch (err) {
        if (run.tx.started) await run.tx.rollback();
        const refusal = run.overflow ?? (err instanceof MatsRefuseMessageError ? err : undefined);
        const outageBudget = runtime.options.databaseOutageRetryMs;
        if (
          !refusal &&
          outageWaitedMs < outageBudget &&
          !this.#lifecycle.aborting &&
          isDatabaseUnavailable(err)
        ) {
          const pauseMs = Math.max(
            1,
            Math.min(
              Math.max(50, stage.options.retryDelayMs) * 2 ** Math.min(outageRound, 10),
              2000,
              outageBudget - outageWaitedMs,
            ),
          );
          const outageLog = { ...fields, err, waitedMs: outageWaitedMs, pauseMs };
          const outageMsg =
            'Mats stage: database unreachable; keeping the message and trying again (not a delivery attempt)';
          if (outageRound === 0) stage.logger.warn(outageLog, outageMsg);
          else stage.logger.debug(outageLog, outageMsg);
          await this.#lifecycle.sleep(pauseMs);
          outageWaitedMs += pauseMs;
          if (!this.#lifecycle.aborting) continue;
          delivery.reject(true);
          this.#finish(fields, 'retry', t0, 'Mats stage stopped while the database was unreachable', err);
          return;
        }
        if (refusal) {
          await this.#divert(delivery, refusal, true, attempt, envelope.dlqCount, 'refused', fields, t0);
        } else if (attempt >= max) {
          await this.#divert(delivery, err, false, attempt, envelope.dlqCount, 'error', fields, t0);
        } else {
          runtime.instruments.redeliveries.inc({ app: runtime.options.appName, stage: stage.stageId });
          await this.#lifecycle.sleep(stage.options.retryDelayMs);
          delivery.reject(true);
          this.#finish(fields, 'retry', t0, 'Mats stage failed; rolled back, rejected for redelivery', err);
        }
        return;
      }
    }

    const mids = run.collector.messages.map((m) => m.matsMessageId);
    fields.matsMessageIdsOut = mids;
    if (outgoing.length > 0) {
      const tConfirm = performance.now();
      try {
        // try/catch rather than .catch(): no extra promise per run on the success path.
        try {
          await runtime.transport.publish(outgoing);
        } catch (err) {
          await runtime.retryNacked(outgoing, err);
        }
        fields.confirmMs = performance.now() - tConfirm;
        runtime.instruments.outMessages.inc(this.#labels, outgoing.length);
        if (stage.options.outbox) runtime.outbox!.scheduleDelete(mids);
      } catch (err) {
        if (stage.options.outbox) {
          stage.logger.warn(
            { ...fields, err },
            'Mats publish failed after commit; the outbox sweeper will send',
          );
        } else {
          // The "very bad" case (section 2.2): committed, but the messages are not out. Redelivery re-runs the stage.
          delivery.reject(true);
          this.#finish(
            fields,
            'error',
            t0,
            'Mats publish failed after the DB commit with the outbox off: rejected for redelivery (the stage must be idempotent)',
            err,
          );
          return;
        }
      }
    }
    delivery.ack();
    this.#afterCommit(run, fields);
    this.#finish(fields, 'ok', t0, 'Mats stage completed');
  }

  async #handleDuplicate(delivery: Delivery, run: StageRun, fields: RunLog, t0: number): Promise<void> {
    const runtime = this.#runtime;
    const trx = await run.tx.get();
    const rows = await runtime.store!.outboxByCause(trx, run.incoming.envelope.id);
    await run.tx.commit();
    if (rows.length > 0) {
      try {
        await runtime.outbox!.publishStored(rows);
        runtime.outbox!.scheduleDelete(rows.map((r) => r.matsMessageId));
      } catch (err) {
        this.#stage.logger.warn(
          { ...fields, err },
          "Mats re-publish of a duplicate's outbox rows failed; sweeper will send",
        );
      }
    }
    fields.matsMessageIdsOut = rows.map((r) => r.matsMessageId);
    delivery.ack();
    this.#finish(fields, 'duplicate', t0, 'Mats duplicate delivery (inbox): lambda skipped');
  }

  #afterCommit(run: StageRun, fields: RunLog): void {
    const fn = run.collector.afterCommit;
    if (!fn) return;
    const log = (err: unknown): void =>
      this.#stage.logger.error({ ...fields, err }, 'Mats doAfterCommit threw');
    runOutsideStageContext(() => {
      try {
        const result = fn();
        if (result instanceof Promise) result.catch(log);
      } catch (err) {
        log(err);
      }
    });
  }

  async #divert(
    delivery: Delivery,
    error: unknown,
    refused: boolean,
    attempt: number,
    envelopeDlqCount: number | undefined,
    reason: 'undecodable' | 'attempts' | 'refused' | 'error',
    fields: RunLog,
    t0: number,
  ): Promise<void> {
    const runtime = this.#runtime;
    const stage = this.#stage;
    const message = deadLetterMessage(
      delivery,
      { error, refused, attempt, envelopeDlqCount },
      {
        queuePrefix: runtime.options.queuePrefix,
        stageId: stage.stageId,
        appName: runtime.options.appName,
        appVersion: runtime.options.appVersion,
        nodeName: runtime.options.nodeName,
        stageOrigin: stage.origin,
        now: runtime.now(),
      },
    );
    try {
      await runtime.publish([message]);
    } catch (err) {
      stage.logger.error({ ...fields, err }, 'Mats dead-lettering failed; requeueing the message');
      await this.#lifecycle.sleep(stage.options.retryDelayMs);
      delivery.reject(true);
      return;
    }
    delivery.ack();
    runtime.instruments.dlq.inc({ app: runtime.options.appName, stage: stage.stageId, reason });
    this.#finish(
      fields,
      'dlq',
      t0,
      `Mats message dead-lettered to ${message.target.name} (${reason})`,
      error,
    );
  }

  /** The one completion line per stage run (`mats-semantics.md` 7) and the exec metrics. */
  #finish(fields: RunLog, outcome: Outcome, t0: number, msg: string, err?: unknown): void {
    const runtime = this.#runtime;
    const stage = this.#stage;
    fields.outcome = outcome;
    fields.totalMs = performance.now() - t0;
    const labels = this.#labels;
    const i = runtime.instruments;
    i.execTotal.observe(this.#outcomeLabels[outcome], fields.totalMs / 1000);
    if (fields.userLambdaMs !== undefined) i.execUserLambda.observe(labels, fields.userLambdaMs / 1000);
    if (fields.dbCommitMs !== undefined) i.execDbCommit.observe(labels, fields.dbCommitMs / 1000);
    if (fields.confirmMs !== undefined) i.execConfirm.observe(labels, fields.confirmMs / 1000);
    const level = LOG_LEVEL[outcome];
    stage.logger[level](
      err === undefined ? fields : { ...fields, err: describeError(err).slice(0, 4000) },
      msg,
    );
  }
}
