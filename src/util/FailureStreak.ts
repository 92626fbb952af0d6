import type { Logger } from '../logging.ts';

/** Warnings about a streak of failures at most this often (ms), after the first. */
const REPEAT_WARN_MS = 60_000;

/**
 * Logs the failures of a periodic task (a sweeper, a job) without flooding the log while a dependency is down:
 * the first failure of a streak at warn, the next ones at debug with a warn at most once a minute ("still
 * failing, n times"), and the end of a streak at info.
 */
export class FailureStreak {
  readonly #logger: Logger;
  readonly #what: string;
  readonly #fields: Record<string, unknown>;
  readonly #now: () => number;
  #failures = 0;
  #lastWarnAt = 0;

  /** `what`: the task, as the log messages name it (e.g. 'Mats outbox sweep'). */
  constructor(
    logger: Logger,
    what: string,
    fields: Record<string, unknown> = {},
    now: () => number = Date.now,
  ) {
    this.#logger = logger;
    this.#what = what;
    this.#fields = fields;
    this.#now = now;
  }

  /** Consecutive failures so far (0 after a success). */
  get failures(): number {
    return this.#failures;
  }

  failed(err: unknown): void {
    this.#failures++;
    const now = this.#now();
    if (this.#failures === 1) {
      this.#lastWarnAt = now;
      this.#logger.warn({ ...this.#fields, err }, `${this.#what} failed`);
    } else if (now - this.#lastWarnAt >= REPEAT_WARN_MS) {
      this.#lastWarnAt = now;
      this.#logger.warn(
        { ...this.#fields, err, failures: this.#failures },
        `${this.#what} still failing (${this.#failures} times in a row)`,
      );
    } else {
      this.#logger.debug({ ...this.#fields, err, failures: this.#failures }, `${this.#what} failed again`);
    }
  }

  succeeded(): void {
    if (this.#failures === 0) return;
    this.#logger.info(
      { ...this.#fields, failures: this.#failures },
      `${this.#what} works again after ${this.#failures} failures`,
    );
    this.#failures = 0;
  }
}
