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
  #active = true;

  get active(): boolean {
    return this.#active;
  }

  /** The handler returned: later calls (timers it left behind) run on their own. */
  close(): void {
    this.#active = false;
  }
}

const storage = new AsyncLocalStorage<HandlerScope>();

/** The scope of the handler this code runs in, if it is still running. */
export function currentHandlerScope(): HandlerScope | undefined {
  const scope = storage.getStore();
  return scope?.active ? scope : undefined;
}

/** Runs `fn` with `scope` as the ambient handler scope. */
export function runInHandlerScope<T>(scope: HandlerScope, fn: () => T): T {
  return storage.run(scope, fn);
}

/** Runs `fn` outside any handler scope. */
export function runOutsideHandlerScope<T>(fn: () => T): T {
  return storage.exit(fn);
}
