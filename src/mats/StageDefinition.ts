import type { Logger } from '../logging.ts';
import type { ResolvedStageOptions } from './MatsFactoryOptions.ts';
import type { StageContext } from './StageContext.ts';

/** A stage lambda: `(context, state, incoming)`; the return value is the reply for a last stage. */
export type StageLambda<R = unknown, S = unknown, I = unknown> = (
  context: StageContext<R>,
  state: S,
  incoming: I,
) => unknown;

/** @internal One stage of an endpoint, as the processor needs it. */
export interface StageDefinition {
  readonly endpointId: string;
  readonly stageId: string;
  readonly index: number;
  /** The next stage of the endpoint (set when it is added), target of request replies, next and nextDirect. */
  next: StageDefinition | undefined;
  readonly lambda: StageLambda<unknown, unknown, unknown>;
  /** A last stage of a staged endpoint, or a single: the lambda's return value is the reply. */
  readonly autoReply: boolean;
  /** `topic` for subscription terminators. */
  readonly source: 'queue' | 'topic';
  readonly options: ResolvedStageOptions;
  /** Where the stage was defined (source location), for `mats_dlq_StageOrigin`. */
  readonly origin: string;
  readonly logger: Logger;
}

/** The caller's source location (file:line:col) outside this library, or '' if unknown. */
export function callerOrigin(): string {
  const stack = new Error().stack?.split('\n') ?? [];
  for (const line of stack.slice(1)) {
    if (line.includes('/src/mats/')) continue;
    const m = /\(?([^()\s]+:\d+:\d+)\)?\s*$/.exec(line.trim());
    if (m?.[1]) return m[1];
  }
  return '';
}
