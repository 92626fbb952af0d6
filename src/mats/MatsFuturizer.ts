import { ErrorCode, MatsSocketError } from '../errors.ts';
import { randomId } from '../util/ids.ts';
import { MatsFuturizerCapacityError, MatsFuturizerTimeoutError } from './MatsErrors.ts';
import type { MatsEndpointImpl } from './MatsEndpoint.ts';
import type { MatsFactory } from './MatsFactory.ts';
import type { MatsInitiate } from './MatsInitiate.ts';
import type { MatsInitiator } from './MatsInitiator.ts';
import { sanitizeId } from './matsIds.ts';
import type { MatsRuntime } from './MatsRuntime.ts';
import type { StageContext } from './StageContext.ts';
import { StageContextImpl } from './StageContextImpl.ts';

/** What a futurized reply carries besides the reply itself (a snapshot of the reply's stage context). */
export interface FuturizedContext {
  traceId: string;
  matsMessageId: string;
  fromStageId: string;
  fromAppName: string;
  initiatorId: string;
  initiatingTimestamp: number;
  /** String sideloads of the reply. */
  strings: ReadonlyMap<string, string>;
  /** Bytes sideloads of the reply. */
  bytes: ReadonlyMap<string, Buffer>;
  traceProperty<T = unknown>(name: string): T | undefined;
}

export interface FuturizedReply<R> {
  reply: R;
  context: FuturizedContext;
}

/** Further settings of the request, e.g. `init => init.interactive().setTraceProperty(...)`. */
export type FuturizeCustomizer = (init: MatsInitiate) => void;

/** The non-essential timeout and TTL (`docs/mats-semantics.md` 1.5). */
const NONESSENTIAL_TIMEOUT_MS = 150_000;
const NONESSENTIAL_TTL_MS = 180_000;

interface Outstanding {
  resolve(value: FuturizedReply<unknown>): void;
  reject(error: unknown): void;
  timer: NodeJS.Timeout;
}

/**
 * The synchronous edge into an asynchronous flow (`docs/mats-semantics.md` 1.5): `futurize(...)` sends a request whose
 * reply goes, through `replyToSubscription`, to this node's private subscription terminator
 * `<appName>.Futurizer.private.repliesFor.<nodeName>`, carrying a correlation id as its state; the promise
 * settles on this node only. Late replies, and replies after a restart, are dropped silently. For the edges (HTTP
 * handlers) only, never to compose endpoints.
 */
export class MatsFuturizer {
  readonly terminatorId: string;
  readonly #runtime: MatsRuntime;
  readonly #initiator: MatsInitiator;
  readonly #endpoint: MatsEndpointImpl;
  readonly #outstanding = new Map<string, Outstanding>();
  #closed = false;

  constructor(factory: MatsFactory, runtime: MatsRuntime) {
    this.#runtime = runtime;
    const app = runtime.options.appName;
    this.terminatorId = sanitizeId(`${app}.Futurizer.private.repliesFor.${runtime.options.nodeName}`);
    this.#initiator = factory.getOrCreateInitiator(`${app}.Futurizer.init`);
    this.#endpoint = factory
      .createInternalEndpoint(this.terminatorId, 'subscriptionTerminator', {
        concurrency: 1,
        interactiveConcurrency: 1,
      })
      .addOnlyStage((ctx, state, reply) => this.#onReply(ctx, state, reply), false);
  }

  /** Number of requests waiting for their reply. */
  get outstanding(): number {
    return this.#outstanding.size;
  }

  /**
   * Requests `to` with `request`; resolves with the reply (and its context) on this node, or rejects with
   * {@link MatsFuturizerTimeoutError} after `timeoutMs`, or at once with {@link MatsFuturizerCapacityError} when
   * too many are outstanding.
   */
  async futurize<R = unknown>(
    traceId: string,
    from: string,
    to: string,
    timeoutMs: number,
    request: unknown,
    customize?: FuturizeCustomizer,
  ): Promise<FuturizedReply<R>> {
    if (this.#closed) throw new MatsSocketError(ErrorCode.TRANSPORT_CLOSED, 'The futurizer is closed');
    if (this.#outstanding.size >= this.#runtime.options.futurizerMaxOutstanding) {
      throw new MatsFuturizerCapacityError(
        `Too many outstanding futurized requests (${this.#outstanding.size}); rejecting '${traceId}'`,
      );
    }
    const correlationId = randomId(16);
    const reply = new Promise<FuturizedReply<R>>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#outstanding.delete(correlationId);
        reject(
          new MatsFuturizerTimeoutError(`No reply for '${traceId}' from '${to}' within ${timeoutMs} ms`),
        );
      }, timeoutMs);
      this.#outstanding.set(correlationId, { resolve: resolve as Outstanding['resolve'], reject, timer });
    });
    try {
      // The reply can only reach us once the private subscription is bound.
      if (!(await this.#endpoint.waitForReceiving(timeoutMs))) {
        throw new MatsFuturizerTimeoutError(`Futurizer subscription '${this.terminatorId}' is not receiving`);
      }
      await this.#initiator.initiate((init) => {
        init.traceId(traceId).from(from).to(to).replyToSubscription(this.terminatorId, correlationId);
        customize?.(init);
        init.request(request);
      });
    } catch (err) {
      const entry = this.#outstanding.get(correlationId);
      if (entry) {
        clearTimeout(entry.timer);
        this.#outstanding.delete(correlationId);
      }
      void reply.catch(() => undefined);
      throw err;
    }
    return reply;
  }

  /** {@link futurize} with timeout 150 s and `nonPersistent(180000).interactive().noAudit()`. */
  futurizeNonessential<R = unknown>(
    traceId: string,
    from: string,
    to: string,
    request: unknown,
    customize?: FuturizeCustomizer,
  ): Promise<FuturizedReply<R>> {
    return this.futurize<R>(traceId, from, to, NONESSENTIAL_TIMEOUT_MS, request, (init) => {
      init.nonPersistent(NONESSENTIAL_TTL_MS).interactive().noAudit();
      customize?.(init);
    });
  }

  /** @internal Accepts requests again (factory started after a stop). */
  reopen(): void {
    this.#closed = false;
  }

  /** @internal Rejects every outstanding request (factory stop). */
  close(): void {
    this.#closed = true;
    for (const [id, entry] of this.#outstanding) {
      clearTimeout(entry.timer);
      entry.reject(new MatsSocketError(ErrorCode.TRANSPORT_CLOSED, 'The Mats factory stopped'));
      this.#outstanding.delete(id);
    }
  }

  #onReply(ctx: StageContext, state: unknown, reply: unknown): void {
    const correlationId = typeof state === 'string' ? state : undefined;
    const entry = correlationId === undefined ? undefined : this.#outstanding.get(correlationId);
    if (!entry || correlationId === undefined) {
      ctx.log.debug({ traceId: ctx.traceId }, 'Futurizer: late or unknown reply dropped');
      return;
    }
    clearTimeout(entry.timer);
    this.#outstanding.delete(correlationId);
    const strings = new Map(ctx.getStringKeys().map((k) => [k, ctx.getString(k)!]));
    const bytes = new Map(ctx.getBytesKeys().map((k) => [k, ctx.getBytes(k)!]));
    const props: Record<string, unknown> =
      ctx instanceof StageContextImpl ? ctx.currentTraceProperties() : {};
    const context: FuturizedContext = {
      traceId: ctx.traceId,
      matsMessageId: ctx.matsMessageId,
      fromStageId: ctx.fromStageId,
      fromAppName: ctx.fromAppName,
      initiatorId: ctx.initiatorId,
      initiatingTimestamp: ctx.initiatingTimestamp,
      strings,
      bytes,
      traceProperty: <T>(name: string) => props[name] as T | undefined,
    };
    entry.resolve({ reply, context });
  }
}
