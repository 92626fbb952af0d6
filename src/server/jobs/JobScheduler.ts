import type { Logger } from '../../logging.ts';
import { FailureStreak } from '../../util/FailureStreak.ts';

interface Job {
  name: string;
  intervalMs: number;
  run: () => Promise<void>;
  timer: NodeJS.Timeout | undefined;
  running: Promise<void> | undefined;
  failures: FailureStreak;
}

/**
 * Periodic jobs of one node (docs/store.md section 8): each interval gets a constant random extra of 0-10 % per node
 * so nodes spread out; a job never overlaps itself (the next run is scheduled when the current one finished); a
 * failing job logs (once per streak of failures, see {@link FailureStreak}) and waits for its next interval.
 */
export class JobScheduler {
  readonly #logger: Logger;
  readonly #jobs = new Map<string, Job>();
  #running = false;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  /** Adds a job; `intervalMs` 0 disables it. */
  add(name: string, intervalMs: number, run: () => Promise<void>): void {
    if (intervalMs <= 0) return;
    const jittered = Math.round(intervalMs * (1 + Math.random() * 0.1));
    this.#jobs.set(name, {
      name,
      intervalMs: jittered,
      run,
      timer: undefined,
      running: undefined,
      failures: new FailureStreak(this.#logger, `scheduled job '${name}'`, { job: name }),
    });
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    for (const job of this.#jobs.values()) this.#schedule(job);
  }

  /** Runs a job now (tests, operators); joins a run in progress. */
  runNow(name: string): Promise<void> {
    const job = this.#jobs.get(name);
    if (!job) return Promise.reject(new Error(`No job '${name}'`));
    return this.#execute(job);
  }

  /** Stops scheduling and waits for running jobs. Idempotent. */
  async stop(): Promise<void> {
    this.#running = false;
    for (const job of this.#jobs.values()) clearTimeout(job.timer);
    await Promise.allSettled([...this.#jobs.values()].map((j) => j.running ?? Promise.resolve()));
  }

  #schedule(job: Job): void {
    if (!this.#running) return;
    job.timer = setTimeout(() => {
      void this.#execute(job).finally(() => this.#schedule(job));
    }, job.intervalMs);
  }

  #execute(job: Job): Promise<void> {
    job.running ??= job
      .run()
      .then(
        () => job.failures.succeeded(),
        (err: unknown) => job.failures.failed(err),
      )
      .finally(() => (job.running = undefined));
    return job.running;
  }
}
