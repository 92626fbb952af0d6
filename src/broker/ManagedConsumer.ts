import { ErrorCode, TransportError } from '../errors.ts';
import { deferred, type Deferred } from '../util/deferred.ts';
import type { Consumer, DeliveryHandler } from './Transport.ts';

/** What a consumer reads from: a durable queue, or a topic (an exclusive queue bound to the pub/sub exchange). */
export interface ConsumerSource {
  kind: 'queue' | 'topic';
  name: string;
}

/** One live consumption on the broker, as started by a transport for one connection generation. */
export interface ActiveConsumer {
  /** Stops it (cancel the consumer, close its channel). Never rejects. */
  cancel(): Promise<void>;
}

/**
 * A {@link Consumer} as the transport keeps it across reconnects: the caller's intent (source, prefetch, handler)
 * plus the broker-side consumption of the current connection generation, re-created after every reconnect.
 * @internal
 */
export class ManagedConsumer implements Consumer {
  readonly source: ConsumerSource;
  readonly prefetch: number;
  /** Consumer priority (`ConsumeOptions.priority`). */
  readonly priority: number;
  readonly handler: DeliveryHandler;
  readonly ready: Promise<void>;
  /** The broker-side consumption, when running. */
  active: ActiveConsumer | undefined;
  /** The connection generation a start is in progress for (-1: none). */
  startingGeneration = -1;
  /** Consecutive failed starts (channel closed by the broker), for the retry backoff. */
  failures = 0;
  retryTimer: NodeJS.Timeout | undefined;
  private readonly readyDeferred: Deferred<void>;
  private readySettled = false;
  private cancelled = false;
  private cancelling: Promise<void> | undefined;
  private readonly onCancel: (consumer: ManagedConsumer) => void;

  constructor(
    source: ConsumerSource,
    prefetch: number,
    handler: DeliveryHandler,
    onCancel: (consumer: ManagedConsumer) => void,
    priority = 0,
  ) {
    this.source = source;
    this.prefetch = prefetch;
    this.priority = priority;
    this.handler = handler;
    this.onCancel = onCancel;
    this.readyDeferred = deferred<void>();
    this.ready = this.readyDeferred.promise;
    // A caller that never awaits `ready` must not get an unhandled rejection when the transport closes first.
    this.ready.catch(() => {});
  }

  get isCancelled(): boolean {
    return this.cancelled;
  }

  get isReady(): boolean {
    return this.readySettled;
  }

  markReady(): void {
    if (this.readySettled) return;
    this.readySettled = true;
    this.readyDeferred.resolve();
  }

  markFailed(error: unknown): void {
    if (this.readySettled) return;
    this.readySettled = true;
    this.readyDeferred.reject(error);
  }

  /** Stops consuming. Unacked deliveries can still be settled until their channel closes. Idempotent. */
  cancel(): Promise<void> {
    this.cancelling ??= (async () => {
      this.cancelled = true;
      if (this.retryTimer) clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
      this.onCancel(this);
      this.markFailed(
        new TransportError(ErrorCode.TRANSPORT_CLOSED, `consumer of '${this.source.name}' was cancelled`),
      );
      const active = this.active;
      this.active = undefined;
      await active?.cancel();
    })();
    return this.cancelling;
  }
}
