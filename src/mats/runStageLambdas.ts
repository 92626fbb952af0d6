import { runInStageContext } from './ambientContext.ts';
import type { Sideloads } from './EnvelopeBuilder.ts';
import type { MatsEnvelope } from './MatsEnvelope.ts';
import { MatsIllegalCallError } from './MatsErrors.ts';
import { StageContextImpl, type StageRun } from './StageContextImpl.ts';
import type { StageDefinition } from './StageDefinition.ts';

/**
 * Runs the lambda of `stage` on the incoming message, and the stages that `nextDirect` chains to it, each in its
 * own stage context. Synchronous while the lambdas are (no promise per message on the hot path); continues
 * asynchronously from the first lambda that returns a promise. A lambda's failure propagates (the caller rolls
 * back).
 */
export function runStageLambdas(
  run: StageRun,
  stage: StageDefinition,
  envelope: MatsEnvelope,
): void | Promise<void> {
  const stored = run.incoming.stateAtHeight();
  const state: unknown = stored === undefined || stored === null ? {} : stored;
  return runFrom(run, stage, state, envelope.data, undefined);
}

function runFrom(
  run: StageRun,
  stage: StageDefinition,
  state: unknown,
  dto: unknown,
  carried: Sideloads | undefined,
): void | Promise<void> {
  for (;;) {
    const current = stage;
    const ctx = new StageContextImpl(run, current, state, carried);
    let result: unknown;
    try {
      result = runInStageContext(ctx.ambientSlot, () => current.lambda(ctx, state, dto));
    } catch (err) {
      ctx.deactivate();
      throw err;
    }
    if (result instanceof Promise) {
      return result.then(
        (value: unknown) => {
          const next = afterLambda(ctx, current, value);
          return next ? runFrom(run, next.stage, state, next.dto, next.sideloads) : undefined;
        },
        (err: unknown) => {
          ctx.deactivate();
          throw err;
        },
      );
    }
    const next = afterLambda(ctx, current, result);
    if (!next) return;
    stage = next.stage;
    dto = next.dto;
    carried = next.sideloads;
  }
}

/** The auto-reply of a last stage, then the context is closed; returns the nextDirect continuation, if any. */
function afterLambda(
  ctx: StageContextImpl,
  stage: StageDefinition,
  result: unknown,
): { stage: StageDefinition; dto: unknown; sideloads: Sideloads } | undefined {
  try {
    if (stage.autoReply) {
      if (!ctx.hasTerminal) ctx.reply(result === undefined ? null : result);
      else if (result !== undefined) {
        throw new MatsIllegalCallError(
          `Stage ${stage.stageId} returned a reply value after already calling reply/next/goTo`,
        );
      }
    }
  } finally {
    ctx.deactivate();
  }
  const nextDirect = ctx.nextDirectCall;
  if (!nextDirect || !stage.next) return undefined;
  return { stage: stage.next, dto: nextDirect.dto, sideloads: nextDirect.sideloads };
}
