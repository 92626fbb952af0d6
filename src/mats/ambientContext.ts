import { AsyncLocalStorage } from 'node:async_hooks';
import { types } from 'node:util';
import type { StageContext } from './StageContext.ts';

/** @internal A stage context that knows whether its lambda is still running. */
export interface AmbientStageContext extends StageContext {
  /** True only while the stage's lambda chain runs (not in timers it left behind, not in doAfterCommit). */
  readonly active: boolean;
}

/** The context of `async` lambdas, which must follow them across `await`. */
const storage = new AsyncLocalStorage<AmbientStageContext | undefined>();

/**
 * The context of the plain (non-`async`) lambda running right now. Such a lambda runs to its end synchronously,
 * so a variable set around the call is all it needs. Why not AsyncLocalStorage for all: on Node 20 its first
 * `run()` installs promise hooks for the whole process, and every promise afterwards (ours, amqplib's, knex's)
 * carries the store; measured on `bench:mats`, that was ~20 µs of CPU per round trip, most of it extra GC.
 * Services whose stages are all plain functions never pay it.
 */
let plainContext: AmbientStageContext | undefined;

/**
 * The stage context of the stage lambda this code runs in, or `undefined` outside a stage. Library code such as
 * the MatsSocket server's `send`/`request` uses it to join the stage's transaction (`await ctx.sql()`) and to add
 * outgoing messages (`ctx.initiate(...)`, or the factory's default initiator), which are then sent only if the
 * stage commits.
 *
 * It follows an `async` lambda across its `await`s (AsyncLocalStorage). A plain function lambda has it while it
 * runs; if it returns a promise, callbacks of that promise run without it: write such a lambda as `async`.
 * Work a stage leaves behind (a timer, an un-awaited promise) sees `undefined` once the lambda has returned.
 */
export function currentStageContext(): StageContext | undefined {
  return currentAmbientContext();
}

/** @internal */
export function currentAmbientContext(): AmbientStageContext | undefined {
  const ctx = plainContext ?? storage.getStore();
  return ctx?.active ? ctx : undefined;
}

/** @internal True for lambdas that need the context across `await` (`async` functions). */
export function needsAsyncContext(fn: (...args: never[]) => unknown): boolean {
  return types.isAsyncFunction(fn);
}

/**
 * @internal Runs `fn` with `ctx` as the ambient stage context: through AsyncLocalStorage when `acrossAwaits`
 * (an `async` lambda), else only for the synchronous call.
 */
export function runInStageContext<T>(ctx: AmbientStageContext, fn: () => T, acrossAwaits: boolean): T {
  if (acrossAwaits) return storage.run(ctx, fn);
  const outer = plainContext;
  plainContext = ctx;
  try {
    return fn();
  } finally {
    plainContext = outer;
  }
}

/** @internal Runs `fn` outside any stage context (e.g. doAfterCommit). */
export function runOutsideStageContext<T>(fn: () => T): T {
  const outer = plainContext;
  plainContext = undefined;
  try {
    // run(undefined) rather than exit(): on Node 20, exit() disables and re-enables the async hooks of every
    // AsyncLocalStorage in the process (promise hooks off and on), a cost paid on every initiation.
    return storage.getStore() === undefined ? fn() : storage.run(undefined, fn);
  } finally {
    plainContext = outer;
  }
}
