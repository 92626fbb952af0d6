import { AsyncLocalStorage } from 'node:async_hooks';
import type { StageContext } from './StageContext.ts';

/** @internal A stage context that knows whether its lambda is still running. */
export interface AmbientStageContext extends StageContext {
  /** True only while the stage's lambda chain runs (not in timers it left behind, not in doAfterCommit). */
  readonly active: boolean;
}

/**
 * What the AsyncLocalStorage carries for one lambda run: a slot the run empties when its lambda ends. Every
 * promise and timer created inside the lambda keeps the store; if the store were the context itself, those that
 * outlive the lambda (a publish awaiting its confirm, an initiation started from a terminator) would keep the
 * context alive, and with it the run's incoming message and outgoing messages. Measured on `bench:mats`: GC took
 * 10.6 % of the time with the context as the store, 6.3–7.1 % with the slot.
 * @internal
 */
export interface AmbientSlot {
  current: AmbientStageContext | undefined;
}

const storage = new AsyncLocalStorage<AmbientSlot | undefined>();

/**
 * The stage context of the stage lambda this code runs in (found through AsyncLocalStorage), or `undefined`
 * outside a stage. Library code such as the MatsSocket server's `send`/`request` uses it to join the stage's
 * transaction (`await ctx.sql()`) and to add outgoing messages (`ctx.initiate(...)`, or the factory's default
 * initiator), which are then sent only if the stage commits.
 *
 * Work a stage leaves behind (a timer, an un-awaited promise) sees `undefined` once the lambda has returned.
 */
export function currentStageContext(): StageContext | undefined {
  return currentAmbientContext();
}

/** @internal */
export function currentAmbientContext(): AmbientStageContext | undefined {
  const ctx = storage.getStore()?.current;
  return ctx?.active ? ctx : undefined;
}

/** @internal Runs `fn` with the context in `slot` as the ambient stage context; the caller empties the slot. */
export function runInStageContext<T>(slot: AmbientSlot, fn: () => T): T {
  return storage.run(slot, fn);
}

/** @internal Runs `fn` outside any stage context (e.g. doAfterCommit). */
export function runOutsideStageContext<T>(fn: () => T): T {
  // run(undefined) rather than exit(): on Node 20, exit() disables and re-enables the async hooks of every
  // AsyncLocalStorage in the process (promise hooks off and on), a cost paid on every initiation. Not even that
  // when no context is current (e.g. in work a finished lambda left behind: its slot is empty).
  return storage.getStore()?.current === undefined ? fn() : storage.run(undefined, fn);
}
