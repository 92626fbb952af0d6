import { AsyncLocalStorage } from 'node:async_hooks';
import type { StageContext } from './StageContext.ts';

/** @internal A stage context that knows whether its lambda is still running. */
export interface AmbientStageContext extends StageContext {
  /** True only while the stage's lambda chain runs (not in timers it left behind, not in doAfterCommit). */
  readonly active: boolean;
}

const storage = new AsyncLocalStorage<AmbientStageContext | undefined>();

/**
 * The stage context of the stage lambda this code runs in (found through AsyncLocalStorage), or `undefined`
 * outside a stage. Library code such as the MatsSocket server's `send`/`request` uses it to join the stage's
 * transaction (`await ctx.sql()`) and to add outgoing messages (`ctx.initiate(...)`, or the factory's default
 * initiator), which are then sent only if the stage commits.
 *
 * Work a stage leaves behind (a timer, an un-awaited promise) sees `undefined` once the lambda has returned.
 */
export function currentStageContext(): StageContext | undefined {
  const ctx = storage.getStore();
  return ctx?.active ? ctx : undefined;
}

/** @internal */
export function currentAmbientContext(): AmbientStageContext | undefined {
  const ctx = storage.getStore();
  return ctx?.active ? ctx : undefined;
}

/** @internal Runs `fn` with `ctx` as the ambient stage context. */
export function runInStageContext<T>(ctx: AmbientStageContext, fn: () => T): T {
  return storage.run(ctx, fn);
}

/** @internal Runs `fn` outside any stage context (e.g. doAfterCommit). */
export function runOutsideStageContext<T>(fn: () => T): T {
  // run(undefined) rather than exit(): on Node 20, exit() disables and re-enables the async hooks of every
  // AsyncLocalStorage in the process (promise hooks off and on), a cost paid on every initiation.
  return storage.getStore() === undefined ? fn() : storage.run(undefined, fn);
}
