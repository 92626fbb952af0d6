import type { Consumer, Delivery } from '../broker/Transport.ts';
import type { Logger } from '../logging.ts';
import { MatsIllegalCallError } from './MatsErrors.ts';
import { resolveStageOptions, type StageOptions } from './MatsFactoryOptions.ts';
import { stageIdOf } from './matsIds.ts';
import type { MatsRuntime } from './MatsRuntime.ts';
import { stageQueueName, topicName } from './MatsWire.ts';
import type { StageContext } from './StageContext.ts';
import { callerOrigin, type StageDefinition, type StageLambda } from './StageDefinition.ts';
import { StageProcessor, type ProcessorLifecycle, type RunningStage } from './StageProcessor.ts';

/** The kinds of endpoint (`docs/mats-semantics.md` 1.1). */
export type EndpointKind = 'staged' | 'single' | 'terminator' | 'subscriptionTerminator';

/**
 * An endpoint: an id and one or more stages, each consuming from its own queue (a subscription terminator from a
 * topic). Stage 0's id is the endpoint id, stage k's is `<endpointId>.stage<k>`.
 *
 * @typeParam R the reply type; @typeParam S the state (STO) type.
 */
export interface MatsEndpoint<R = unknown, S = unknown> {
  readonly endpointId: string;
  readonly kind: EndpointKind;
  /** The stage ids, in order. */
  readonly stageIds: readonly string[];
  /** Adds a stage (staged endpoints). The reply of a `request` made here arrives at the next stage. */
  stage<I = unknown>(
    fn: (ctx: StageContext<R>, state: S, incoming: I) => unknown,
    options?: StageOptions,
  ): this;
  /** Adds the last stage: its return value is the endpoint's reply. Finishes the setup. */
  lastStage<I = unknown>(
    fn: (ctx: StageContext<R>, state: S, incoming: I) => R | Promise<R>,
    options?: StageOptions,
  ): this;
  /** Finishes the setup of an endpoint built with `stage()` only (no reply by return value). */
  finishSetup(): this;
  /**
   * Resolves true once every stage consumes (for a subscription terminator: its queue is bound and consuming),
   * or false after `timeoutMs`.
   */
  waitForReceiving(timeoutMs?: number): Promise<boolean>;
  /** Stops consuming, lets in-flight messages finish (at most `graceMs`), and unregisters the endpoint. */
  remove(graceMs?: number): Promise<void>;
}

/** @internal What an endpoint needs from its factory. */
export interface EndpointHost {
  endpointReady(endpoint: MatsEndpointImpl): void;
  endpointRemoved(endpoint: MatsEndpointImpl): void;
}

/** @internal */
export class MatsEndpointImpl implements MatsEndpoint<unknown, unknown>, ProcessorLifecycle {
  readonly endpointId: string;
  readonly kind: EndpointKind;
  readonly #runtime: MatsRuntime;
  readonly #host: EndpointHost;
  readonly #options: StageOptions | undefined;
  readonly #logger: Logger;
  readonly #stages: StageDefinition[] = [];
  #setupDone = false;
  #consumers: Consumer[] = [];
  #ready: Promise<void> | undefined;
  /** Deliveries being processed; `#idle` is resolved whenever it drops to 0 (for stop). */
  #inFlight = 0;
  #idle: { promise: Promise<void>; resolve: () => void } | undefined;
  readonly #sleepers = new Set<() => void>();
  readonly running = new Set<RunningStage>();
  #slowTimer: NodeJS.Timeout | undefined;
  #aborting = false;
  #stopping: Promise<void> | undefined;
  #removed = false;

  constructor(
    runtime: MatsRuntime,
    host: EndpointHost,
    endpointId: string,
    kind: EndpointKind,
    options?: StageOptions,
  ) {
    this.#runtime = runtime;
    this.#host = host;
    this.endpointId = endpointId;
    this.kind = kind;
    this.#options = options;
    this.#logger = runtime.logger.child({ endpointId });
  }

  get stageIds(): readonly string[] {
    return this.#stages.map((s) => s.stageId);
  }

  get setupDone(): boolean {
    return this.#setupDone;
  }

  get started(): boolean {
    return this.#ready !== undefined && this.#stopping === undefined;
  }

  get aborting(): boolean {
    return this.#aborting;
  }

  get stopping(): boolean {
    return this.#stopping !== undefined;
  }

  /** In-flight deliveries being processed (tests, diagnostics). */
  get inFlight(): number {
    return this.#inFlight;
  }

  sleep(ms: number): Promise<void> {
    if (ms <= 0 || this.#stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.#sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#sleepers.add(wake);
    });
  }

  stage<I = unknown>(
    fn: (ctx: StageContext<unknown>, state: unknown, incoming: I) => unknown,
    options?: StageOptions,
  ): this {
    this.#addStage(fn as StageLambda, false, options);
    return this;
  }

  lastStage<I = unknown>(
    fn: (ctx: StageContext<unknown>, state: unknown, incoming: I) => unknown,
    options?: StageOptions,
  ): this {
    this.#addStage(fn as StageLambda, true, options);
    return this.finishSetup();
  }

  /** @internal Adds the one stage of single/terminator/subscriptionTerminator endpoints. */
  addOnlyStage(fn: StageLambda, autoReply: boolean, options?: StageOptions): this {
    this.#addStage(fn, autoReply, options, callerOrigin());
    return this.finishSetup();
  }

  finishSetup(): this {
    if (this.#setupDone) return this;
    if (this.#stages.length === 0)
      throw new MatsIllegalCallError(`Endpoint ${this.endpointId} has no stages`);
    this.#setupDone = true;
    this.#host.endpointReady(this);
    return this;
  }

  /** @internal Starts consuming (idempotent until stopped). */
  start(): Promise<void> {
    if (this.#ready) return this.#ready;
    this.#aborting = false;
    this.#stopping = undefined;
    this.#ready = this.#startConsumers();
    this.#startSlowWatch();
    // Failures surface through waitForReceiving(); keep them from becoming unhandled rejections.
    this.#ready.catch((err: unknown) =>
      this.#logger.error({ err }, 'Mats endpoint failed to start consuming'),
    );
    return this.#ready;
  }

  async #startConsumers(): Promise<void> {
    const runtime = this.#runtime;
    const transport = runtime.transport;
    await runtime.ensureConnected();
    const prefix = runtime.options.queuePrefix;
    for (const stage of this.#stages) {
      const processor = new StageProcessor(runtime, stage, this);
      const done = (): void => {
        if (--this.#inFlight === 0 && this.#idle) {
          this.#idle.resolve();
          this.#idle = undefined;
        }
      };
      const handler = (delivery: Delivery): void => {
        this.#inFlight++;
        processor.handle(delivery, done);
      };
      if (stage.source === 'topic') {
        this.#consumers.push(transport.subscribe(topicName(prefix, stage.stageId), { prefetch: 1 }, handler));
      } else {
        // consume() declares the queues itself, and retries when a declare fails (e.g. two nodes declaring the
        // same quorum queue at the same moment can get the connection closed on RabbitMQ 3.10).
        const queue = stageQueueName(prefix, stage.stageId, false);
        const interactiveQueue = stageQueueName(prefix, stage.stageId, true);
        this.#consumers.push(
          transport.consume(
            queue,
            { prefetch: stage.options.concurrency, priority: stage.options.priority },
            handler,
          ),
          transport.consume(
            interactiveQueue,
            { prefetch: stage.options.interactiveConcurrency, priority: stage.options.priority },
            handler,
          ),
        );
      }
    }
    await Promise.all(this.#consumers.map((c) => c.ready));
  }

  async waitForReceiving(timeoutMs = 30_000): Promise<boolean> {
    if (!this.#setupDone) return false;
    const deadline = Date.now() + timeoutMs;
    // Not started yet (held until the factory starts): wait for the start, within the timeout.
    while (!this.#ready) {
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, Math.min(20, deadline - Date.now())));
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>(
      (resolve) => (timer = setTimeout(() => resolve(false), deadline - Date.now())),
    );
    try {
      return await Promise.race([this.#ready.then(() => true), timeout]);
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * @internal Stops consuming; waits for in-flight runs at most `graceMs`; then unfinished runs are made to roll
   * back (they requeue their message instead of committing). Idempotent until started again.
   */
  stop(graceMs: number): Promise<void> {
    this.#stopping ??= (async () => {
      const consumers = this.#consumers;
      this.#consumers = [];
      await Promise.allSettled(consumers.map((c) => c.cancel()));
      for (const wake of [...this.#sleepers]) wake();
      await this.#awaitInFlight(graceMs);
      if (this.#inFlight > 0) {
        this.#aborting = true;
        this.#logger.warn({ inFlight: this.#inFlight, graceMs }, 'Mats endpoint stop: grace period exceeded');
      }
      this.#ready = undefined;
      clearInterval(this.#slowTimer);
      this.#slowTimer = undefined;
    })();
    return this.#stopping;
  }

  async remove(graceMs = this.#runtime.options.stopGraceMs): Promise<void> {
    await this.stop(graceMs);
    if (!this.#removed) {
      this.#removed = true;
      this.#host.endpointRemoved(this);
    }
  }

  /** One timer per endpoint checks for runs longer than slowStageWarnMs (the broker's consumer_timeout is 30 min). */
  #startSlowWatch(): void {
    const limit = this.#runtime.options.slowStageWarnMs;
    clearInterval(this.#slowTimer);
    this.#slowTimer = setInterval(
      () => {
        const now = Date.now();
        for (const run of this.running) {
          if (!run.warned && now - run.startedAt >= limit) {
            run.warned = true;
            this.#logger.warn(
              { ...run.fields, runningMs: now - run.startedAt },
              'Mats stage is running for a long time',
            );
          }
        }
      },
      Math.max(10, Math.min(limit / 2, 30_000)),
    );
    this.#slowTimer.unref();
  }

  async #awaitInFlight(graceMs: number): Promise<void> {
    if (this.#inFlight === 0) return;
    if (!this.#idle) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.#idle = { promise, resolve };
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise((r) => (timer = setTimeout(r, graceMs)));
    await Promise.race([this.#idle.promise, timeout]);
    clearTimeout(timer);
  }

  #addStage(
    fn: StageLambda,
    autoReply: boolean,
    options: StageOptions | undefined,
    origin = callerOrigin(),
  ): void {
    if (this.#setupDone)
      throw new MatsIllegalCallError(`Endpoint ${this.endpointId}: setup is already finished`);
    if (typeof fn !== 'function')
      throw new MatsIllegalCallError(`Endpoint ${this.endpointId}: a stage needs a function`);
    const index = this.#stages.length;
    const stageId = stageIdOf(this.endpointId, index);
    const stage: StageDefinition = {
      endpointId: this.endpointId,
      stageId,
      index,
      next: undefined,
      lambda: fn,
      autoReply,
      source: this.kind === 'subscriptionTerminator' ? 'topic' : 'queue',
      options: resolveStageOptions(this.#runtime.options, this.#options, options),
      origin,
      logger: this.#logger.child({ stageId }),
    };
    const previous = this.#stages[index - 1];
    if (previous) previous.next = stage;
    this.#stages.push(stage);
  }
}
