/** The part of a browser `window` the hook uses. */
interface EventTargetLike {
  addEventListener(type: string, listener: () => void): void;
  removeEventListener(type: string, listener: () => void): void;
}

/**
 * The page events after which a session should be closed: `beforeunload` as the official client, and `pagehide`,
 * which mobile browsers fire where they skip `beforeunload` (a tab closed from the switcher).
 */
const UNLOAD_EVENTS = ['beforeunload', 'pagehide'] as const;

/**
 * Calls `onUnload` when the page goes away, in browsers only: it registers on `globalThis.window` when that exists
 * and has `addEventListener` (not in Node, not in web workers). Registering twice, or deregistering when not
 * registered, does nothing.
 */
export class PageUnloadHook {
  readonly #onUnload: () => void;
  #target: EventTargetLike | undefined;

  constructor(onUnload: () => void) {
    this.#onUnload = () => onUnload();
  }

  get registered(): boolean {
    return this.#target !== undefined;
  }

  register(): void {
    if (this.#target) return;
    const target = (globalThis as { window?: Partial<EventTargetLike> }).window;
    if (typeof target?.addEventListener !== 'function' || typeof target.removeEventListener !== 'function')
      return;
    this.#target = target as EventTargetLike;
    for (const type of UNLOAD_EVENTS) this.#target.addEventListener(type, this.#onUnload);
  }

  deregister(): void {
    const target = this.#target;
    this.#target = undefined;
    if (target) for (const type of UNLOAD_EVENTS) target.removeEventListener(type, this.#onUnload);
  }
}
