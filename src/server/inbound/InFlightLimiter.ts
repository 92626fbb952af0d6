/**
 * A counting semaphore with first-come-first-served waiters, for bounding work that one client (or all of them)
 * can have in progress. `acquire(n)` takes `n` units; a request larger than the whole capacity is cut to it, so
 * it runs alone instead of waiting forever.
 */
export class InFlightLimiter {
  readonly max: number;
  #used = 0;
  readonly #waiters: { n: number; resolve: () => void }[] = [];

  constructor(max: number) {
    this.max = max;
  }

  get used(): number {
    return this.#used;
  }

  /** Units the caller got (the request cut to capacity): give exactly these back to {@link release}. */
  units(n: number): number {
    return Math.max(1, Math.min(n, this.max));
  }

  /**
   * Takes `units(n)`: at once (returns `undefined`, sparing a microtask on the common path), or a promise that
   * resolves when they are free and every earlier waiter was served.
   */
  acquire(n = 1): Promise<void> | undefined {
    const units = this.units(n);
    if (this.#waiters.length === 0 && this.#used + units <= this.max) {
      this.#used += units;
      return undefined;
    }
    return new Promise((resolve) => this.#waiters.push({ n: units, resolve }));
  }

  release(n = 1): void {
    this.#used -= this.units(n);
    while (this.#waiters.length > 0 && this.#used + this.#waiters[0]!.n <= this.max) {
      const next = this.#waiters.shift()!;
      this.#used += next.n;
      next.resolve();
    }
  }
}
