import type { OutgoingMessage, Transport } from '../broker/Transport.ts';
import { ErrorCode } from '../errors.ts';
import type { Logger } from '../logging.ts';
import { MatsMessageStore } from '../store/MatsMessageStore.ts';
import type { SenderIdentity } from './EnvelopeBuilder.ts';
import type { ResolvedMatsFactoryOptions } from './MatsFactoryOptions.ts';
import { createMatsInstruments, type MatsInstruments } from './MatsInstruments.ts';
import { randomChars, resolveEndpointId } from './matsIds.ts';
import { finalizeMessage, type PendingMessage } from './MatsWire.ts';
import { OutboxPublisher } from './OutboxPublisher.ts';

const NACK_RETRY_DELAYS_MS = [50, 150] as const;

/**
 * @internal What the parts of one factory share: resolved options, the transport, the store and outbox publisher
 * (with a db), the node's logger and the metric instruments.
 */
export class MatsRuntime {
  readonly options: ResolvedMatsFactoryOptions;
  readonly transport: Transport;
  readonly sender: SenderIdentity;
  readonly store: MatsMessageStore | undefined;
  readonly outbox: OutboxPublisher | undefined;
  readonly logger: Logger;
  readonly instruments: MatsInstruments;

  constructor(options: ResolvedMatsFactoryOptions) {
    this.options = options;
    this.transport = options.transport;
    this.sender = {
      appName: options.appName,
      appVersion: options.appVersion,
      nodeName: options.nodeName,
      queuePrefix: options.queuePrefix,
    };
    this.logger = options.logger.child({ app: options.appName, node: options.nodeName });
    this.instruments = createMatsInstruments(options.metrics);
    if (options.db) {
      this.store = new MatsMessageStore(options.db);
      this.outbox = new OutboxPublisher({
        store: this.store,
        transport: this.transport,
        publish: (messages) => this.publish(messages),
        logger: this.logger,
        instruments: this.instruments,
        clock: options.clock,
        appName: options.appName,
        appVersion: options.appVersion,
        nodeName: options.nodeName,
        leaseMs: options.outboxLeaseMs,
        maxAttempts: options.outboxMaxAttempts,
        sweepIntervalMs: options.outboxSweepIntervalMs,
        sweepMinAgeMs: options.outboxSweepMinAgeMs,
        sweepBatchSize: options.outboxSweepBatchSize,
        deleteWindowMs: options.outboxDeleteWindowMs,
        inboxRetentionMs: options.inboxRetentionMs,
        inboxPurgeIntervalMs: options.inboxPurgeIntervalMs,
      });
    } else {
      this.store = undefined;
      this.outbox = undefined;
    }
  }

  #connecting: Promise<void> | undefined;

  /** Connects the transport unless it is connected or reconnecting (it recovers by itself then). */
  ensureConnected(): Promise<void> {
    const state = this.transport.state;
    if (state === 'connected' || state === 'reconnecting') return Promise.resolve();
    this.#connecting ??= this.transport.connect().finally(() => (this.#connecting = undefined));
    return this.#connecting;
  }

  now(): number {
    return this.options.clock.now();
  }

  /** Ids already resolved and validated (every initiation resolves its `to` and `replyTo`). */
  readonly #endpointIds = new Map<string, string>();

  /** An endpoint id as the application gave it, resolved (`.x` → `<commonGroupId>.x`) and validated. */
  endpointId(id: string): string {
    let resolved = this.#endpointIds.get(id);
    if (resolved === undefined) {
      resolved = resolveEndpointId(id, this.options.commonGroupId);
      // Bounded: ids built per request (unusual) must not grow the cache without limit.
      if (this.#endpointIds.size < 10_000) this.#endpointIds.set(id, resolved);
    }
    return resolved;
  }

  /** A random message id suffix (initiations outside stages). */
  randomSuffix(): string {
    return randomChars(6);
  }

  /**
   * Publishes with confirms. A nack is retried twice (after 50 and 150 ms): RabbitMQ 3.10 nacks publishes to a
   * quorum queue whose leader is not ready yet (e.g. just declared). Re-sending is safe: the ids stay the same and
   * receivers de-duplicate. Other failures are not retried here.
   */
  publish(messages: readonly OutgoingMessage[]): Promise<void> {
    return this.transport.publish(messages).catch((err: unknown) => this.retryNacked(messages, err));
  }

  /** The failure path of {@link publish}: rethrows `err` unless it is a nack, which is retried (twice). */
  async retryNacked(messages: readonly OutgoingMessage[], err: unknown): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const code = (err as { code?: unknown }).code;
      if (code !== ErrorCode.TRANSPORT_NACKED || attempt >= NACK_RETRY_DELAYS_MS.length) throw err;
      this.logger.debug({ err, attempt }, 'Mats publish nacked; retrying');
      await new Promise((r) => setTimeout(r, NACK_RETRY_DELAYS_MS[attempt]));
      try {
        await this.transport.publish(messages);
        return;
      } catch (next) {
        err = next;
      }
    }
  }

  /** Compresses and wraps the collected messages for publishing (synchronously unless a body is large). */
  finalize(
    pending: readonly PendingMessage[],
    processingMs: number,
  ): OutgoingMessage[] | Promise<OutgoingMessage[]> {
    const opts = {
      now: this.now(),
      processingMs,
      compressionThresholdBytes: this.options.compressionThresholdBytes,
    };
    const out: Array<OutgoingMessage | Promise<OutgoingMessage>> = pending.map((p) =>
      finalizeMessage(p, opts),
    );
    if (!out.some((m) => m instanceof Promise)) return out as OutgoingMessage[];
    return Promise.all(out as Array<Promise<OutgoingMessage>>);
  }
}
