import type { Logger } from '../logging.ts';

/** Signals arriving this soon after the first one are duplicates of it, in ms. */
const DUPLICATE_SIGNAL_WINDOW_MS = 500;

/** Options of {@link StopController}. */
export interface StopControllerOptions {
  /** The graceful stop of everything the program started. */
  stop: () => Promise<void>;
  logger: Logger;
  /** If the graceful stop has not finished after this long, the process exits with 1, in ms. @default 30000 */
  hardTimeoutMs?: number;
  /**
   * After a successful stop the process should exit by itself; if a leaked handle keeps it alive, it exits after
   * this long anyway, in ms. @default 2000
   */
  lingerMs?: number;
  /**
   * Called right before a forced exit (a second signal, or the hard timeout), e.g. to SIGKILL child processes
   * that would otherwise outlive this one. @default nothing
   */
  onForce?: () => void;
}

/**
 * The one place that handles SIGINT/SIGTERM (style guide: signal handling sits in the CLI). The first signal, or
 * {@link requestStop} (e.g. `GET /shutdown`), starts the graceful stop and the process exits 0 when it is done; a
 * second signal forces an immediate exit with 1.
 */
export class StopController {
  readonly #options: StopControllerOptions;
  readonly #onSignal = (signal: NodeJS.Signals): void => this.#signal(signal);
  #stopping: Promise<void> | undefined;
  #firstSignalAt = 0;

  constructor(options: StopControllerOptions) {
    this.#options = options;
  }

  /** Installs the SIGINT and SIGTERM handlers. */
  install(): this {
    process.on('SIGINT', this.#onSignal);
    process.on('SIGTERM', this.#onSignal);
    return this;
  }

  /** Starts the graceful stop (once); resolves when it is done. */
  requestStop(reason: string): Promise<void> {
    this.#stopping ??= this.#run(reason);
    return this.#stopping;
  }

  #signal(signal: NodeJS.Signals): void {
    const now = Date.now();
    if (this.#stopping) {
      // One Ctrl-C reaches every process of the group (npm, sh, tsx, node), and wrappers relay it once more:
      // copies right after the first are the same keypress, not a request to force.
      if (now - this.#firstSignalAt < DUPLICATE_SIGNAL_WINDOW_MS) return;
      this.#options.logger.warn({ signal }, 'second signal: forcing exit');
      this.#options.onForce?.();
      process.exit(1);
    }
    this.#firstSignalAt = now;
    void this.requestStop(`signal ${signal}`);
  }

  async #run(reason: string): Promise<void> {
    const { logger, stop } = this.#options;
    logger.info({ reason }, 'stopping gracefully (a second SIGINT/SIGTERM forces exit)');
    const hard = setTimeout(() => {
      logger.error({}, 'graceful stop did not finish in time: forcing exit');
      this.#options.onForce?.();
      process.exit(1);
    }, this.#options.hardTimeoutMs ?? 30_000);
    hard.unref();
    try {
      await stop();
      process.exitCode = 0;
      logger.info({}, 'stopped');
    } catch (err) {
      process.exitCode = 1;
      logger.error({ err }, 'graceful stop failed');
    } finally {
      clearTimeout(hard);
      process.off('SIGINT', this.#onSignal);
      process.off('SIGTERM', this.#onSignal);
      // Our signal handlers are gone: from here a signal has its default effect (immediate exit).
      const linger = setTimeout(() => {
        logger.warn({}, 'something still keeps the process alive after the stop: exiting');
        process.exit();
      }, this.#options.lingerMs ?? 2000);
      linger.unref();
    }
  }
}
