import type { Knex } from 'knex';
import type { Logger } from '../logging.ts';
import type { CallType } from './MatsEnvelope.ts';
import type { MatsInitiate } from './MatsInitiate.ts';

/**
 * What a stage lambda gets as its first argument (`(context, state, incoming)`): the incoming message's metadata
 * and the operations of `docs/mats-semantics.md` 1.3. Legal per stage: one or more `request`s, **or** exactly one of
 * `reply`, `next`, `nextDirect`, `goTo`, or nothing; anything else throws `MatsIllegalCallError`.
 *
 * DTOs and states are serialized when an operation is called (later changes are not seen), except for
 * `nextDirect`, which passes them by reference.
 */
export interface StageContext<R = unknown> {
  readonly endpointId: string;
  readonly stageId: string;
  /** 0 for the endpoint's first stage. */
  readonly stageIndex: number;
  readonly traceId: string;
  readonly flowId: string;
  /** The incoming message's matsMessageId. */
  readonly matsMessageId: string;
  /** The broker's message id of the incoming message (equal to the matsMessageId on our transports). */
  readonly brokerMessageId: string | undefined;
  readonly callType: CallType;
  /** The stage (or initiatorId) that sent the incoming message. */
  readonly fromStageId: string;
  readonly fromAppName: string;
  readonly fromAppVersion: string;
  readonly fromNodeName: string;
  /** Epoch ms. */
  readonly fromTimestamp: number;
  readonly initiatorId: string;
  readonly initiatingAppName: string;
  readonly initiatingAppVersion: string;
  readonly initiatingNodeName: string;
  /** Epoch ms. */
  readonly initiatingTimestamp: number;
  readonly isInteractive: boolean;
  readonly isNonPersistent: boolean;
  readonly isNoAudit: boolean;
  /** 1 for the first delivery. */
  readonly deliveryAttempt: number;
  /** Reply stack height the stage runs at (0: a reply would be a no-op). */
  readonly stackHeight: number;
  /** A logger bound to traceId, stageId and matsMessageId. */
  readonly log: Logger;

  /** Calls `endpointId`; its reply arrives at this endpoint's next stage with the state as it is now. */
  request(endpointId: string, dto: unknown, initialTargetSto?: unknown): string;
  /** Replies to the caller; a silent no-op (returns undefined) when the reply stack is empty. */
  reply(dto: R): string | undefined;
  /** Goes to this endpoint's next stage through the broker, with the current state. */
  next(dto: unknown): string;
  /** Runs the next stage in this transaction, after this lambda returns; no message, no serialization. */
  nextDirect(dto: unknown): void;
  /** Tail call: `endpointId` replies to this endpoint's caller. */
  goTo(endpointId: string, dto: unknown, initialTargetSto?: unknown): string;
  /** Starts child flows in this stage's transaction: sent only if the stage commits. */
  initiate(fn: (init: MatsInitiate) => unknown): Promise<void>;
  /** Runs after DB commit, broker confirms and ack; never on rollback. Only the last registered is kept. */
  doAfterCommit(fn: () => unknown): void;

  /** Sideload for the next outgoing request/reply/next/goTo only. */
  addString(key: string, value: string): void;
  addBytes(key: string, value: Uint8Array): void;
  /** Sideloads of the incoming message. */
  getString(key: string): string | undefined;
  getBytes(key: string): Buffer | undefined;
  getStringKeys(): string[];
  getBytesKeys(): string[];

  /** Sticky for the rest of the flow, including child flows. The value must be JSON-serializable. */
  setTraceProperty(name: string, value: unknown): void;
  getTraceProperty<T = unknown>(name: string): T | undefined;

  /** The stage's knex transaction, begun on first use. Throws without a factory db. */
  sql(): Promise<Knex.Transaction>;
  /** `getAttribute('sql')` is {@link sql}. */
  getAttribute(name: 'sql'): Promise<Knex.Transaction>;
}
