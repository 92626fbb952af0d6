import * as amqp from 'amqplib';

/**
 * The queues (and the pub/sub exchange) of one bench run, so that they are deleted after each phase and also when
 * the run is interrupted: the broker is a shared service, and quorum queues left behind cost it memory and ticks.
 */
export class BenchQueues {
  readonly #url: string;
  readonly #prefix: string;
  /** Declared by a phase and not deleted yet. */
  readonly #undeleted = new Set<string>();
  /**
   * Ends the phase in progress before an interruption deletes its queues: a Mats factory's consumers would
   * declare them again, and RabbitMQ closes a raw loop's connection (541) when a queue it publishes to is deleted.
   */
  #stopPhase: (() => Promise<void>) | undefined;
  #interrupted = false;

  /** `prefix`: the run's prefix, also of its pub/sub exchange `<prefix>pubsub`. */
  constructor(url: string, prefix: string) {
    this.#url = url;
    this.#prefix = prefix;
  }

  /** True once Ctrl-C (or SIGTERM) arrived: failures of the phase still running are then expected. */
  get interrupted(): boolean {
    return this.#interrupted;
  }

  /**
   * Runs one phase that declares `queues` (they count as left until deleted); `run` hands `onStoppable` the
   * function that ends the phase at once.
   */
  async phase<T>(
    queues: readonly string[],
    run: (onStoppable: (stop: () => Promise<void>) => void) => Promise<T>,
  ): Promise<T> {
    for (const q of queues) this.#undeleted.add(q);
    try {
      return await run((stop) => (this.#stopPhase = stop));
    } finally {
      this.#stopPhase = undefined;
    }
  }

  /** Deletes queues (with `exchange`, also the run's pub/sub exchange); a missing one is no error. */
  async delete(queues: readonly string[], exchange = false): Promise<void> {
    const conn = await amqp.connect(this.#url, {
      clientProperties: { connection_name: `${this.#prefix}cleanup` },
    });
    try {
      for (const q of queues) {
        // A channel each: a failing delete closes its channel, and must not stop the rest.
        const ch = await conn.createChannel();
        await ch.deleteQueue(q).catch(() => undefined);
        await ch.close().catch(() => undefined);
        this.#undeleted.delete(q);
      }
      if (exchange) {
        const ch = await conn.createChannel();
        await ch.deleteExchange(`${this.#prefix}pubsub`).catch(() => undefined);
        await ch.close().catch(() => undefined);
      }
    } finally {
      await conn.close();
    }
  }

  /** Forgets queues a phase deleted itself. */
  deleted(queues: readonly string[]): void {
    for (const q of queues) this.#undeleted.delete(q);
  }

  /** Deletes whatever is left, and the exchange (end of the run). */
  deleteAll(): Promise<void> {
    return this.delete([...this.#undeleted], true);
  }

  /**
   * On SIGINT/SIGTERM: `beforeExit()` (e.g. give the broker its CPUs back), stop the phase, delete what is left
   * (within 10 s, else name it), exit 130.
   */
  deleteOnSignal(beforeExit: () => void): void {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.once(signal, () => {
        this.#interrupted = true;
        beforeExit();
        const left = [...this.#undeleted];
        const timer = setTimeout(() => {
          console.error(`bench interrupted; could not delete queues ${left.join(', ')}`);
          process.exit(130);
        }, 10_000);
        void Promise.resolve(this.#stopPhase?.())
          .catch(() => undefined)
          .then(() => this.deleteAll())
          .catch((err: unknown) => console.error(`bench cleanup failed: ${String(err)}`))
          .finally(() => {
            clearTimeout(timer);
            process.exit(130);
          });
      });
    }
  }
}
