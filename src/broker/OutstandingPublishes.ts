import { ErrorCode, TransportError } from '../errors.ts';

/** `error` as an Error (a non-Error rejection is wrapped, with it as the cause). */
export function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error('publish failed', { cause: error });
}

/** A publish awaiting its confirms. */
interface OutstandingPublish {
  /** Epoch ms after which it fails with TRANSPORT_CONFIRM_TIMEOUT. */
  readonly deadline: number;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

/**
 * The publishes of a transport that await their confirms, failed with `TRANSPORT_CONFIRM_TIMEOUT` once past the
 * confirm timeout. No timer, race or finally per publish: one periodic sweep, running only while publishes are
 * outstanding (an idle transport holds no timer), fails those past their deadline. With one fixed timeout,
 * insertion order is deadline order, so the sweep stops at the first publish still in time.
 * @internal
 */
export class OutstandingPublishes {
  readonly #timeoutMs: number;
  readonly #entries = new Set<OutstandingPublish>();
  #sweepTimer: NodeJS.Timeout | undefined;
  #onSettled: (() => void) | undefined;

  /** `timeoutMs`: the confirm timeout. */
  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
  }

  get size(): number {
    return this.#entries.size;
  }

  /**
   * A promise for one publish: `start(done)` starts it, and `done(error)` (error undefined: confirmed) settles
   * it, unless the sweep failed it first (a late outcome is then dropped). A throwing `start` fails it.
   */
  track(start: (done: (error: unknown) => void) => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const entry: OutstandingPublish = { deadline: Date.now() + this.#timeoutMs, resolve, reject };
      this.#entries.add(entry);
      this.#sweepTimer ??= setInterval(() => this.#sweep(), this.#sweepMs());
      try {
        // An inline callback: this is the per-message hot path (no named closure, no extra promise).
        start((error) => this.#done(entry, error));
      } catch (error) {
        this.#done(entry, error);
      }
    });
  }

  /** Resolves once none is outstanding (at once if none is); the caller bounds the wait. */
  settled(): Promise<void> {
    if (this.#entries.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => (this.#onSettled = resolve));
  }

  /** Stops waiting in {@link settled}, and stops the sweep if none is outstanding (close). */
  stopWaiting(): void {
    this.#onSettled = undefined;
    // Any still outstanding time out through the sweep.
    if (this.#entries.size === 0) this.#stopSweep();
  }

  /** Period of the sweep: a publish fails at most this much after its deadline. */
  #sweepMs(): number {
    return Math.max(1, Math.min(1000, Math.ceil(this.#timeoutMs / 4)));
  }

  #done(entry: OutstandingPublish, error: unknown): void {
    if (!this.#settle(entry)) return;
    if (error === undefined) entry.resolve();
    else entry.reject(toError(error));
  }

  /** Removes a settled publish; false if the sweep already failed it. */
  #settle(entry: OutstandingPublish): boolean {
    if (!this.#entries.delete(entry)) return false;
    if (this.#entries.size === 0) this.#onSettled?.();
    return true;
  }

  #sweep(): void {
    if (this.#entries.size === 0) {
      this.#stopSweep();
      return;
    }
    const now = Date.now();
    for (const entry of this.#entries) {
      if (entry.deadline > now) break;
      this.#settle(entry);
      entry.reject(
        new TransportError(
          ErrorCode.TRANSPORT_CONFIRM_TIMEOUT,
          `publish not confirmed within ${this.#timeoutMs} ms`,
        ),
      );
    }
  }

  #stopSweep(): void {
    clearInterval(this.#sweepTimer);
    this.#sweepTimer = undefined;
  }
}
