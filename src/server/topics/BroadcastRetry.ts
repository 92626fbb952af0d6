import type { Logger } from '../../logging.ts';
import { backoffDelay } from '../../util/backoff.ts';
import type { PreparedPublish } from './PreparedPublish.ts';

/** Broadcasts sent again per attempt, at most. */
const BATCH = 500;

/**
 * Publishes whose broadcast failed (the broker down or refusing) after their log row was committed: sent again,
 * oldest first, when the broker connection is back ({@link retryNow}) or after a back-off. Without it the last
 * publishes before an outage reached nobody until the topic's next publish (whose broadcast makes the nodes read
 * the hole from the log): at the end of a burst that may be never. Receivers drop a seq they already delivered.
 * Bounded: past `maxUnsent` the oldest are forgotten (they stay in the replay log for resubscribers).
 */
export class BroadcastRetry {
  readonly #send: (prepared: readonly PreparedPublish[]) => Promise<void>;
  readonly #logger: Logger;
  readonly #maxUnsent: number;
  #unsent: PreparedPublish[] = [];
  #timer: NodeJS.Timeout | undefined;
  #failures = 0;
  #running = false;
  #stopped = false;

  constructor(
    send: (prepared: readonly PreparedPublish[]) => Promise<void>,
    logger: Logger,
    maxUnsent = 10_000,
  ) {
    this.#send = send;
    this.#logger = logger;
    this.#maxUnsent = maxUnsent;
  }

  /** Publishes whose broadcast failed. */
  failed(prepared: readonly PreparedPublish[]): void {
    if (this.#stopped) return;
    this.#unsent.push(...prepared);
    if (this.#unsent.length > this.#maxUnsent) this.#unsent.splice(0, this.#unsent.length - this.#maxUnsent);
    this.#schedule();
  }

  /** The broker connection is back: send what is waiting now. */
  retryNow(): void {
    if (this.#unsent.length === 0 || this.#stopped) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    void this.#run();
  }

  /** Publishes waiting to be sent again. */
  get waiting(): number {
    return this.#unsent.length;
  }

  /** Server stop: nothing is sent any more. Idempotent. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#running) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#run();
    }, backoffDelay(this.#failures));
  }

  async #run(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      while (this.#unsent.length > 0 && !this.#stopped) {
        const batch = this.#unsent.splice(0, BATCH);
        try {
          await this.#send(batch);
          this.#failures = 0;
        } catch (err) {
          this.#unsent.unshift(...batch);
          this.#failures++;
          this.#logger.warn(
            { err, waiting: this.#unsent.length },
            'topic broadcast retry failed; trying again',
          );
          break;
        }
      }
    } finally {
      this.#running = false;
    }
    if (this.#unsent.length > 0) this.#schedule();
  }
}
