import { isDatabaseUnavailable } from '../../store/sqlErrors.ts';
import type { ServerCore } from '../ServerCore.ts';

export interface RetryWhileUnavailableOptions {
  /** How long to keep trying while the database is unreachable, ms; 0: a single attempt. */
  budgetMs: number;
  /** Gives up early (the server is stopping). */
  giveUp(): boolean;
  /** Called before each pause (for logging), with the failure and the pause in ms. */
  onRetry?(err: unknown, pauseMs: number): void;
}

/**
 * Runs `fn`, and again after a pause (50 ms doubling to 2 s) while it fails because the database cannot be reached,
 * for at most `budgetMs`. Other failures, and the last one, are thrown. For store writes that clean up after a
 * delivery (ACK completion, ACK2 inbox deletes): a database restart should delay them, not drop them.
 */
export async function retryWhileDatabaseUnavailable<T>(
  fn: () => Promise<T>,
  options: RetryWhileUnavailableOptions,
): Promise<T> {
  let waited = 0;
  for (let round = 0; ; round++) {
    try {
      return await fn();
    } catch (err) {
      if (waited >= options.budgetMs || options.giveUp() || !isDatabaseUnavailable(err)) throw err;
      const pauseMs = Math.max(1, Math.min(50 * 2 ** Math.min(round, 10), 2000, options.budgetMs - waited));
      options.onRetry?.(err, pauseMs);
      await new Promise((r) => setTimeout(r, pauseMs));
      waited += pauseMs;
    }
  }
}

/**
 * The server's options for {@link retryWhileDatabaseUnavailable}: `timings.databaseOutageRetryMs`, giving up once
 * the server stops; each retry logged at debug as `database unreachable; <what>`.
 */
export function serverOutageRetry(core: ServerCore, what: string): RetryWhileUnavailableOptions {
  return {
    budgetMs: core.options.timings.databaseOutageRetryMs,
    giveUp: () => core.isStopping(),
    onRetry: (err, pauseMs) => core.logger.debug({ err, pauseMs }, `database unreachable; ${what}`),
  };
}
