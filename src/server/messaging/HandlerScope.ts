import { AsyncLocalStorage } from 'node:async_hooks';
import type { OutboxMessageInput } from '../../store/storeTypes.ts';

/** A topic publish made inside a handler, done when the handling commits. */
export interface CollectedPublish {
  topicId: string;
  traceId: string;
  message: unknown;
}

/**
 * The ambient "MatsSocket handler context": while an incoming handler, reply adapter or reply terminator runs,
 * `server.send/request/publish` calls are **collected** here instead of opening a transaction, and are stored in
 * the transaction that commits the handling (then poked/broadcast after the commit).
 */
export class HandlerScope {
  readonly outbox: OutboxMessageInput[] = [];
  readonly publishes: CollectedPublish[] = [];
  /**
   * What the AsyncLocalStorage carries, emptied by {@link close}: promises and timers the handler leaves behind
   * keep the store, and must not keep the scope's collected messages alive with it (as in `ambientContext.ts`).
   */
  readonly #slot: { current: HandlerScope | undefined } = { current: this };

  get active(): boolean {
    return this.#slot.current !== undefined;
  }

  /** The handler returned: later calls (timers it left behind) run on their own. */
  close(): void {
    this.#slot.current = undefined;
  }

  /** Runs `fn` with this scope as the ambient handler scope. */
  run<T>(fn: () => T): T {
    return storage.run(this.#slot, fn);
  }
}

const storage = new AsyncLocalStorage<{ current: HandlerScope | undefined }>();

/** The scope of the handler this code runs in, if it is still running. */
export function currentHandlerScope(): HandlerScope | undefined {
  return storage.getStore()?.current;
}

/** Runs `fn` with `scope` as the ambient handler scope. */
export function runInHandlerScope<T>(scope: HandlerScope, fn: () => T): T {
  return scope.run(fn);
}
