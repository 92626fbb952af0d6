import { performance } from 'node:perf_hooks';
import type { Delivery, OutgoingMessage } from '../broker/Transport.ts';
import type { StoredOutgoingMessage } from '../store/MatsMessageStore.ts';
import { runOutsideStageContext } from './ambientContext.ts';
import { briefError, deadLetterMessage } from './DeadLetter.ts';
import type { MatsEnvelope } from './MatsEnvelope.ts';
import { sanitizeId } from './matsIds.ts';
import type { MatsRuntime } from './MatsRuntime.ts';
import { decodeDelivery, MatsHeader } from './MatsWire.ts';
import type { StageRun } from './StageContextImpl.ts';
import type { StageDefinition } from './StageDefinition.ts';
import { StageRunReport, type RunLog } from './StageRunReport.ts';
import { runStageTransaction, type StageTransactionScope } from './stageTransaction.ts';

/** @internal How a processor cooperates with its endpoint's lifecycle. */
export interface ProcessorLifecycle {
  /** True once the stop grace period has passed: unfinished runs roll back instead of committing. */
  readonly aborting: boolean;
  /** True from the start of `stop()` (its sleeps return at once from then on). */
  readonly stopping: boolean;
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

/**
 * Processes the deliveries of one stage in the transactional order of `docs/mats-semantics.md` 2.1: decode → attempt
 * check → deadline → inbox → lambda (with nextDirect chain) → outbox → DB commit → publish with confirms → ack →
 * doAfterCommit; failures roll back and are retried with `retryDelayMs`, dead-lettered at the last attempt, or
 * dead-lettered at once when refused (section 2.2 and 3).
 */
export class StageProcessor {
  readonly #runtime: MatsRuntime;
  readonly #stage: StageDefinition;
  readonly #lifecycle: ProcessorLifecycle;
  readonly #scope: StageTransactionScope;
  readonly #report: StageRunReport;

  constructor(runtime: MatsRuntime, stage: StageDefinition, lifecycle: ProcessorLifecycle) {
    this.#runtime = runtime;
    this.#stage = stage;
    this.#lifecycle = lifecycle;
    this.#report = new StageRunReport(runtime, stage);
    this.#scope = {
      runtime,
      stage,
      // Every node receives its own copy of a topic message (same id): de-duplicate per node there.
      inboxKey:
        stage.source === 'topic' ? sanitizeId(`${stage.stageId}@${runtime.options.nodeName}`) : stage.stageId,
      aborting: () => lifecycle.aborting,
      sleep: (ms) => lifecycle.sleep(ms),
    };
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

    // Before decoding: a message that crashed the consumer may be one that is costly to decode (a large or
    // compressed body), so its last attempt should not pay for that again.
    if (attempt > max) {
      const error = new Error(
        `Delivery attempt ${attempt} exceeds maxDeliveryAttempts ${max}: earlier attempts crashed the consumer`,
      );
      await this.#divert(delivery, error, false, attempt, undefined, 'attempts', fields, t0);
      return;
    }

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

    if (expiredHere(delivery, t0, runtime.now())) {
      delivery.ack();
      runtime.instruments.expiredDropped.inc({ app: runtime.options.appName, stage: stage.stageId });
      this.#report.finish(fields, 'expired', t0, 'Mats message expired before processing; dropped');
      return;
    }

    if (this.#lifecycle.aborting) {
      delivery.reject(true);
      return;
    }

    const result = await runStageTransaction(this.#scope, delivery, envelope, attempt, t0, fields);
    switch (result.kind) {
      case 'committed':
        return this.#publishAndAck(delivery, result.run, result.outgoing, fields, t0);
      case 'duplicate':
        return this.#handleDuplicate(delivery, result.via, result.rows, fields, t0);
      case 'stopped':
        delivery.reject(true);
        this.#report.finish(
          fields,
          'retry',
          t0,
          'Mats stage stopped while the database was unreachable',
          result.error,
        );
        return;
      case 'failed': {
        const err = result.error;
        if (result.refusal) {
          await this.#divert(
            delivery,
            result.refusal,
            true,
            attempt,
            envelope.dlqCount,
            'refused',
            fields,
            t0,
          );
        } else if (attempt >= max) {
          await this.#divert(delivery, err, false, attempt, envelope.dlqCount, 'error', fields, t0);
        } else {
          runtime.instruments.redeliveries.inc({ app: runtime.options.appName, stage: stage.stageId });
          await this.#lifecycle.sleep(stage.options.retryDelayMs);
          delivery.reject(true);
          this.#report.finish(
            fields,
            'retry',
            t0,
            'Mats stage failed; rolled back, rejected for redelivery',
            err,
          );
        }
      }
    }
  }

  /** After the commit: publish with confirms, ack, doAfterCommit. */
  async #publishAndAck(
    delivery: Delivery,
    run: StageRun,
    outgoing: OutgoingMessage[],
    fields: RunLog,
    t0: number,
  ): Promise<void> {
    const runtime = this.#runtime;
    const stage = this.#stage;
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
        runtime.instruments.outMessages.inc(this.#report.labels, outgoing.length);
        if (stage.options.outbox) runtime.outbox!.scheduleDelete(mids);
      } catch (err) {
        if (stage.options.outbox) {
          stage.logger.warn(
            { ...fields, err },
            'Mats publish failed after commit; the outbox sweeper will send',
          );
        } else if (!(await this.#republishUntilSent(outgoing, fields, err))) {
          // Stopping: the "very bad" case (section 2.2). Redelivery re-runs the stage (it must be idempotent).
          delivery.reject(true);
          this.#report.finish(
            fields,
            'error',
            t0,
            'Mats publish failed after the DB commit with the outbox off and the endpoint is stopping: rejected for redelivery (the stage must be idempotent)',
            err,
          );
          return;
        }
      }
    }
    delivery.ack();
    this.#afterCommit(run, fields);
    this.#report.finish(fields, 'ok', t0, 'Mats stage completed');
  }

  /**
   * After a committed run whose publish failed with the outbox off: publishes the same messages (same ids) again
   * with backoff, from max(50, retryDelayMs) doubling to 2 s, holding the delivery unacked, until they are
   * confirmed (true) or the endpoint stops (false). The run itself succeeded: rejecting the delivery would
   * spend a delivery attempt on a broker problem, so a long memory alarm would dead-letter correctly processed
   * messages, and every redelivery would run the lambda and commit again.
   */
  async #republishUntilSent(
    outgoing: readonly OutgoingMessage[],
    fields: RunLog,
    firstError: unknown,
  ): Promise<boolean> {
    const runtime = this.#runtime;
    const lifecycle = this.#lifecycle;
    this.#stage.logger.error(
      { ...fields, err: briefError(firstError) },
      'Mats publish failed after the DB commit with the outbox off; publishing again (not a delivery attempt)',
    );
    const baseMs = Math.max(50, this.#stage.options.retryDelayMs);
    // Stopping cuts the pauses short: give up then rather than spin; the redelivery runs the stage again.
    for (let round = 0; !lifecycle.stopping; round++) {
      await lifecycle.sleep(Math.min(baseMs * 2 ** Math.min(round, 10), 2000));
      if (lifecycle.stopping) return false;
      try {
        await runtime.publish(outgoing);
        return true;
      } catch (err) {
        this.#stage.logger.debug({ ...fields, err: briefError(err), round }, 'Mats publish failed again');
      }
    }
    return false;
  }

  async #handleDuplicate(
    delivery: Delivery,
    via: 'inbox' | 'outbox',
    rows: ReadonlyArray<Pick<StoredOutgoingMessage, 'matsMessageId' | 'message'>>,
    fields: RunLog,
    t0: number,
  ): Promise<void> {
    const runtime = this.#runtime;
    if (rows.length > 0) {
      // Rows not confirmed now stay for the sweeper (publishStored never rejects).
      runtime.outbox!.scheduleDelete(await runtime.outbox!.publishStored(rows));
    }
    fields.matsMessageIdsOut = rows.map((r) => r.matsMessageId);
    delivery.ack();
    this.#report.finish(
      fields,
      'duplicate',
      t0,
      via === 'inbox'
        ? 'Mats duplicate delivery (inbox): lambda skipped'
        : 'Mats message already committed by an earlier attempt (its outbox rows exist): acked',
    );
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
    this.#report.finish(
      fields,
      'dlq',
      t0,
      `Mats message dead-lettered to ${message.target.name} (${reason})`,
      error,
    );
  }
}

/**
 * Whether the hop TTL of a delivery received at `receivedPerf` (performance.now()) is over, docs/mats-semantics.md
 * §2.1 step 4. The TTL is a duration: the broker enforces it (AMQP `expiration`) from the enqueue on its own
 * clock, so the message arrived in time, and its hop is over once this node has held it that long. `mats_Expires`
 * is a deadline on the sender's clock: judged against this node's clock only for a message without `expiration`,
 * since a sender whose clock runs behind by more than the TTL would otherwise have every message dropped.
 */
function expiredHere(delivery: Delivery, receivedPerf: number, now: number): boolean {
  const ttl = delivery.properties.expiration;
  if (typeof ttl === 'number') return performance.now() - receivedPerf >= ttl;
  const expires = delivery.properties.headers[MatsHeader.EXPIRES];
  return typeof expires === 'number' && expires <= now;
}
