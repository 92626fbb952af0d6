import type { Logger } from '../logging.ts';
import { MatsMessageStore } from '../store/MatsMessageStore.ts';
import { MatsIllegalCallError } from './MatsErrors.ts';
import {
  resolveMatsFactoryOptions,
  type MatsFactoryOptions,
  type ResolvedMatsFactoryOptions,
  type StageOptions,
} from './MatsFactoryOptions.ts';
import { MatsEndpointImpl, type EndpointHost, type EndpointKind, type MatsEndpoint } from './MatsEndpoint.ts';
import { MatsFuturizer } from './MatsFuturizer.ts';
import { MatsInitiatorImpl, type MatsInitiator, type MatsInitiatorOptions } from './MatsInitiator.ts';
import { MatsRuntime } from './MatsRuntime.ts';
import type { StageContext } from './StageContext.ts';
import type { StageLambda } from './StageDefinition.ts';

/**
 * One per node: owns the endpoints, initiators, futurizer, outbox sweeper and configuration, on a transport (and
 * optionally a knex db) that the caller owns and closes.
 *
 * Lifecycle: endpoints start consuming as soon as their setup is finished, unless
 * {@link holdEndpointsUntilFactoryIsStarted} was called (then at {@link start}). {@link stop} stops consuming,
 * lets in-flight stages finish or roll back within the grace period, and never acks a message whose outgoing
 * messages are not confirmed or stored in the outbox.
 */
export class MatsFactory implements EndpointHost {
  readonly options: ResolvedMatsFactoryOptions;
  readonly #runtime: MatsRuntime;
  readonly #endpoints = new Map<string, MatsEndpointImpl>();
  readonly #initiators = new Map<string, MatsInitiatorImpl>();
  readonly #defaultInitiator: MatsInitiatorImpl;
  #futurizer: MatsFuturizer | undefined;
  #hold = false;
  #started = false;
  #stopping: Promise<void> | undefined;
  #starting: Promise<void> | undefined;

  constructor(options: MatsFactoryOptions) {
    this.options = resolveMatsFactoryOptions(options);
    this.#runtime = new MatsRuntime(this.options);
    this.#defaultInitiator = new MatsInitiatorImpl(this.#runtime, 'default', true);
  }

  /** The node's logger (bound to app and node). */
  get logger(): Logger {
    return this.#runtime.logger;
  }

  /** The Mats SQL store (inbox/outbox), when the factory has a db. */
  get store(): MatsMessageStore | undefined {
    return this.#runtime.store;
  }

  /** Creates the `mats_inbox` and `mats_outbox` tables if needed (own migration table `knex_migrations_mats`). */
  async migrate(): Promise<void> {
    if (!this.options.db) throw new MatsIllegalCallError('migrate() needs the factory db');
    await MatsMessageStore.migrate(this.options.db);
  }

  /** A multi-stage endpoint with reply type R and state type S; add stages, then `lastStage` or `finishSetup`. */
  staged<R = unknown, S = unknown>(endpointId: string, options?: StageOptions): MatsEndpoint<R, S> {
    return this.#create(endpointId, 'staged', options) as unknown as MatsEndpoint<R, S>;
  }

  /** A one-stage endpoint whose function returns the reply. */
  single<R = unknown, I = unknown>(
    endpointId: string,
    fn: (ctx: StageContext<R>, incoming: I) => R | Promise<R>,
    options?: StageOptions,
  ): MatsEndpoint<R, unknown> {
    const ep = this.#create(endpointId, 'single', options);
    const lambda: StageLambda = (ctx, _state, incoming) => fn(ctx, incoming as I);
    return ep.addOnlyStage(lambda, true, options);
  }

  /** A one-stage endpoint that consumes and never replies (usually the `replyTo` of an initiation). */
  terminator<S = unknown, I = unknown>(
    endpointId: string,
    fn: (ctx: StageContext<never>, state: S, incoming: I) => unknown,
    options?: StageOptions,
  ): MatsEndpoint<never, S> {
    const ep = this.#create(endpointId, 'terminator', options);
    return ep.addOnlyStage(fn as StageLambda, false, options) as unknown as MatsEndpoint<never, S>;
  }

  /**
   * A terminator fed by a topic: every live node gets a copy; concurrency is always 1. Reached only by `publish`
   * or `replyToSubscription`.
   */
  subscriptionTerminator<S = unknown, I = unknown>(
    endpointId: string,
    fn: (ctx: StageContext<never>, state: S, incoming: I) => unknown,
    options?: Omit<StageOptions, 'concurrency' | 'interactiveConcurrency'>,
  ): MatsEndpoint<never, S> {
    const ep = this.#create(endpointId, 'subscriptionTerminator', {
      ...options,
      concurrency: 1,
      interactiveConcurrency: 1,
    });
    return ep.addOnlyStage(fn as StageLambda, false) as unknown as MatsEndpoint<never, S>;
  }

  /** The endpoint with this (resolved) id, if registered. */
  getEndpoint(endpointId: string): MatsEndpoint | undefined {
    return this.#endpoints.get(endpointId);
  }

  /** The endpoints, by id. */
  getEndpoints(): MatsEndpoint[] {
    return [...this.#endpoints.values()];
  }

  /** The default initiator: joins the ambient stage's transaction when used inside a stage. */
  getDefaultInitiator(): MatsInitiator {
    return this.#defaultInitiator;
  }

  /** A named initiator: never joins a stage; commits and sends on its own. Same name → same initiator. */
  getOrCreateInitiator(name: string, options?: MatsInitiatorOptions): MatsInitiator {
    let initiator = this.#initiators.get(name);
    if (!initiator) {
      initiator = new MatsInitiatorImpl(this.#runtime, name, false, options);
      this.#initiators.set(name, initiator);
    }
    return initiator;
  }

  /** The factory's futurizer (created on first use; registers its node-specific subscription terminator). */
  getFuturizer(): MatsFuturizer {
    this.#futurizer ??= new MatsFuturizer(this, this.#runtime);
    return this.#futurizer;
  }

  /** Endpoints registered from now on do not consume before {@link start}. */
  holdEndpointsUntilFactoryIsStarted(): void {
    if (!this.#started) this.#hold = true;
  }

  /** Connects the transport, starts held endpoints and the outbox sweeper. Idempotent. */
  start(): Promise<void> {
    if (this.#stopping) {
      // Restart after stop.
      this.#stopping = undefined;
      this.#starting = undefined;
    }
    this.#starting ??= (async () => {
      this.#started = true;
      this.#futurizer?.reopen();
      await this.#runtime.ensureConnected();
      if (this.options.outboxSweeper) this.#runtime.outbox?.start();
      await Promise.all([...this.#endpoints.values()].filter((e) => e.setupDone).map((e) => e.start()));
    })();
    return this.#starting;
  }

  /** Resolves true once every endpoint consumes, false after `timeoutMs`. */
  async waitForReceiving(timeoutMs = 30_000): Promise<boolean> {
    const results = await Promise.all(
      [...this.#endpoints.values()].map((e) => e.waitForReceiving(timeoutMs)),
    );
    return results.every(Boolean);
  }

  /**
   * Stops consuming, waits at most `graceMs` for in-flight stages (after that they roll back and requeue), stops
   * the sweeper and rejects outstanding futurized requests. Does not close the transport or the db. Idempotent.
   */
  stop(graceMs: number = this.options.stopGraceMs): Promise<void> {
    this.#stopping ??= (async () => {
      this.#started = false;
      this.#starting = undefined;
      await Promise.allSettled([...this.#endpoints.values()].map((e) => e.stop(graceMs)));
      this.#futurizer?.close();
      await this.#runtime.outbox?.stop(graceMs);
    })();
    return this.#stopping;
  }

  /** @internal */
  endpointReady(endpoint: MatsEndpointImpl): void {
    if (this.#stopping) return;
    if (this.#hold && !this.#started) return;
    if (!this.#started) void this.start();
    else void endpoint.start();
  }

  /** @internal */
  endpointRemoved(endpoint: MatsEndpointImpl): void {
    if (this.#endpoints.get(endpoint.endpointId) === endpoint) this.#endpoints.delete(endpoint.endpointId);
  }

  /** @internal Creates an endpoint with a library-generated id (sanitized instead of validated). */
  createInternalEndpoint(endpointId: string, kind: EndpointKind, options?: StageOptions): MatsEndpointImpl {
    return this.#register(endpointId, kind, options);
  }

  #create(endpointId: string, kind: EndpointKind, options?: StageOptions): MatsEndpointImpl {
    return this.#register(this.#runtime.endpointId(endpointId), kind, options);
  }

  #register(endpointId: string, kind: EndpointKind, options?: StageOptions): MatsEndpointImpl {
    if (this.#endpoints.has(endpointId)) {
      throw new MatsIllegalCallError(`Endpoint '${endpointId}' is already registered on this factory`);
    }
    const endpoint = new MatsEndpointImpl(this.#runtime, this, endpointId, kind, options);
    this.#endpoints.set(endpointId, endpoint);
    return endpoint;
  }
}
