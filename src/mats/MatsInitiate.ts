import type { Knex } from 'knex';
import type { Logger } from '../logging.ts';
import type { KeepTrace } from './MatsEnvelope.ts';

/**
 * The builder an initiation lambda gets (`initiator.initiate(init => ...)`). `traceId`, `from` and `to` are
 * mandatory (inside a stage `from` defaults to the stage id); a terminal operation without them throws before
 * anything is sent. After each terminal operation `to`, `replyTo` and the sideloads are reset; traceId, from,
 * flags, keepTrace and trace properties stay for further messages of the same initiation.
 */
export interface MatsInitiate {
  /** The flow's traceId. Inside a stage it becomes `parent|child`, unless it starts with `!` (taken as-is). */
  traceId(traceId: string): this;
  /** The initiatorId (who starts the flow; for logs and metrics). */
  from(initiatorId: string): this;
  /** The target endpoint id. */
  to(endpointId: string): this;
  /** Where the final reply goes (a terminator, or any stage), with the state it gets. Needed by `request`. */
  replyTo(endpointId: string, replySto: unknown): this;
  /** Like {@link replyTo}, but the reply goes to a subscription terminator's topic (every subscribed node). */
  replyToSubscription(endpointId: string, replySto: unknown): this;
  /** Side-effect-free flow: transient messages; with `ttlMs`, each hop expires after that long. */
  nonPersistent(ttlMs?: number): this;
  /** A TTL in ms per hop without setting nonPersistent: sending then throws (a TTL needs nonPersistent). */
  timeToLive(ttlMs: number): this;
  /** A human is waiting: the flow uses the stages' interactive queues. Sticky for the flow. */
  interactive(): this;
  /** A hint to auditing/monitoring. */
  noAudit(): this;
  /** How much history the envelope carries. @default 'COMPACT' */
  keepTrace(keepTrace: KeepTrace): this;
  /** A trace property, sticky for the whole flow (and child flows). The value must be JSON-serializable. */
  setTraceProperty(name: string, value: unknown): this;
  /** A string sideload for the next message only. */
  addString(key: string, value: string): this;
  /** A bytes sideload for the next message only. */
  addBytes(key: string, value: Uint8Array): this;
  /** Sends `dto` to `to`; the flow ends at the target's reply (unless `replyTo` is set). Returns the matsMessageId. */
  send(dto: unknown, initialTargetSto?: unknown): string;
  /** Requests `to`; the reply goes to `replyTo` (mandatory). Returns the matsMessageId. */
  request(dto: unknown, initialTargetSto?: unknown): string;
  /** Publishes `dto` to the subscription terminator `to` on every subscribed node. Returns the matsMessageId. */
  publish(dto: unknown, initialTargetSto?: unknown): string;
  /** The initiation's knex transaction (begun lazily; the stage's when joined; the caller's when given). */
  sql(): Promise<Knex.Transaction>;
  /** A logger with the initiation's fields. */
  readonly log: Logger;
}
