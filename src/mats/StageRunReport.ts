import { performance } from 'node:perf_hooks';
import { describeError } from './DeadLetter.ts';
import type { MatsRuntime } from './MatsRuntime.ts';
import type { StageDefinition } from './StageDefinition.ts';

/** @internal How a stage run ended. */
export type Outcome = 'ok' | 'retry' | 'dlq' | 'duplicate' | 'expired' | 'error';

// The completion line of a normal run is per message: debug (docs/mats-semantics.md 7), so info stays readable at load.
const LOG_LEVEL: Record<Outcome, 'debug' | 'warn' | 'error'> = {
  ok: 'debug',
  duplicate: 'debug',
  expired: 'debug',
  retry: 'warn',
  dlq: 'error',
  error: 'error',
};

/** @internal The fields of a stage run's log line (`docs/mats-semantics.md` 7); durations in ms. */
export interface RunLog {
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

/** @internal The end of every run of one stage: its log line and its exec metrics. */
export class StageRunReport {
  /** Metric labels of the stage, built once (observations happen per message). */
  readonly labels: Readonly<Record<string, string>>;
  readonly #outcomeLabels: Readonly<Record<Outcome, Readonly<Record<string, string>>>>;
  readonly #runtime: MatsRuntime;
  readonly #stage: StageDefinition;

  constructor(runtime: MatsRuntime, stage: StageDefinition) {
    this.#runtime = runtime;
    this.#stage = stage;
    const labels = { app: runtime.options.appName, stage: stage.stageId, initiator: '' };
    this.labels = labels;
    const o = (outcome: Outcome): Record<string, string> => ({ ...labels, outcome });
    this.#outcomeLabels = {
      ok: o('ok'),
      retry: o('retry'),
      dlq: o('dlq'),
      duplicate: o('duplicate'),
      expired: o('expired'),
      error: o('error'),
    };
  }

  /** The one completion line per stage run and the exec metrics; `t0` is the run's start (`performance.now()`). */
  finish(fields: RunLog, outcome: Outcome, t0: number, msg: string, err?: unknown): void {
    fields.outcome = outcome;
    fields.totalMs = performance.now() - t0;
    const labels = this.labels;
    const i = this.#runtime.instruments;
    i.execTotal.observe(this.#outcomeLabels[outcome], fields.totalMs / 1000);
    if (fields.userLambdaMs !== undefined) i.execUserLambda.observe(labels, fields.userLambdaMs / 1000);
    if (fields.dbCommitMs !== undefined) i.execDbCommit.observe(labels, fields.dbCommitMs / 1000);
    if (fields.confirmMs !== undefined) i.execConfirm.observe(labels, fields.confirmMs / 1000);
    this.#stage.logger[LOG_LEVEL[outcome]](
      err === undefined ? fields : { ...fields, err: describeError(err).slice(0, 4000) },
      msg,
    );
  }
}
