import type { Counter, Histogram, Metrics } from '../metrics/Metrics.ts';

/**
 * The metrics of `docs/mats-semantics.md` 7. Labels are low-cardinality only: `app`, `stage` (stage id, '' for
 * initiations), `initiator` (initiatorId for initiations, '' for stages), `outcome`, `reason`.
 */
export interface MatsInstruments {
  /** Whole stage run or initiation; `outcome`: ok | retry | dlq | duplicate | expired | error. */
  execTotal: Histogram;
  execUserLambda: Histogram;
  execDbCommit: Histogram;
  execConfirm: Histogram;
  outMessages: Counter;
  /** `reason`: error | refused | attempts | undecodable. */
  dlq: Counter;
  redeliveries: Counter;
  expiredDropped: Counter;
  /** Outbox rows whose publish by the sweeper failed (each failure, whether or not it counted an attempt). */
  outboxRowFailures: Counter;
  /** Outbox rows given up after `outboxMaxAttempts`; `outcome`: dlq | parked (not even the dead letter went). */
  outboxDeadLettered: Counter;
}

const EXEC_LABELS = ['app', 'stage', 'initiator', 'outcome'] as const;
const PART_LABELS = ['app', 'stage', 'initiator'] as const;

export function createMatsInstruments(metrics: Metrics): MatsInstruments {
  return {
    execTotal: metrics.histogram({
      name: 'mats_exec_total_seconds',
      help: 'Total time of a Mats stage run or initiation, receive to ack (seconds)',
      labelNames: EXEC_LABELS,
    }),
    execUserLambda: metrics.histogram({
      name: 'mats_exec_userlambda_seconds',
      help: 'Time spent in the user lambda of a stage or initiation (seconds)',
      labelNames: PART_LABELS,
    }),
    execDbCommit: metrics.histogram({
      name: 'mats_exec_db_commit_seconds',
      help: 'Time of the DB commit of a stage or initiation, including outbox inserts (seconds)',
      labelNames: PART_LABELS,
    }),
    execConfirm: metrics.histogram({
      name: 'mats_exec_msgsys_confirm_seconds',
      help: 'Time from publish to broker confirm of the outgoing messages (seconds)',
      labelNames: PART_LABELS,
    }),
    outMessages: metrics.counter({
      name: 'mats_out_messages_total',
      help: 'Outgoing Mats messages published',
      labelNames: PART_LABELS,
    }),
    dlq: metrics.counter({
      name: 'mats_dlq_total',
      help: 'Messages dead-lettered by a stage',
      labelNames: ['app', 'stage', 'reason'],
    }),
    redeliveries: metrics.counter({
      name: 'mats_redeliveries_total',
      help: 'Failed stage attempts rejected for redelivery',
      labelNames: ['app', 'stage'],
    }),
    expiredDropped: metrics.counter({
      name: 'mats_expired_dropped_total',
      help: 'Messages dropped by a stage because their mats_Expires deadline had passed',
      labelNames: ['app', 'stage'],
    }),
    outboxRowFailures: metrics.counter({
      name: 'mats_outbox_publish_failures_total',
      help: 'Mats outbox rows whose publish by the sweeper failed (released for a later sweep or dead-lettered)',
      labelNames: ['app'],
    }),
    outboxDeadLettered: metrics.counter({
      name: 'mats_outbox_dead_lettered_total',
      help: 'Mats outbox rows given up after outboxMaxAttempts failed publishes (outcome: dlq or parked)',
      labelNames: ['app', 'outcome'],
    }),
  };
}
