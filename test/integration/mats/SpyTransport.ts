import { EventEmitter } from 'node:events';
import type {
  ConsumeOptions,
  Consumer,
  Delivery,
  DeliveryHandler,
  OutgoingMessage,
  Transport,
  TransportEventMap,
  TransportState,
} from '../../../src/broker/Transport.ts';
import { ErrorCode, TransportError } from '../../../src/errors.ts';

let globalSeq = 0;

/** A process-wide sequence number, so events of the spy and of other observers (DB commits) can be ordered. */
export function nextSeq(): number {
  return ++globalSeq;
}

/** One observed transport operation, in order. */
export type SpyEvent =
  | { kind: 'publish'; at: number; messages: readonly OutgoingMessage[] }
  | { kind: 'published'; at: number; messages: readonly OutgoingMessage[]; ok: boolean }
  | { kind: 'ack' | 'reject'; at: number; queue: string; messageId: string; requeue?: boolean };

/**
 * A Transport that delegates to a real one and records publishes, confirms, acks and rejects in order; it can also
 * make the next N publishes fail (as a lost connection or a nack would) to provoke the after-commit failure paths.
 */
export class SpyTransport extends EventEmitter<TransportEventMap> implements Transport {
  readonly inner: Transport;
  readonly events: SpyEvent[] = [];
  #failNext = 0;

  constructor(inner: Transport) {
    super();
    this.inner = inner;
  }

  get name(): string {
    return this.inner.name;
  }

  get state(): TransportState {
    return this.inner.state;
  }

  /** The next `n` publish calls reject with TRANSPORT_UNAVAILABLE without reaching the broker. */
  failNextPublishes(n: number): void {
    this.#failNext = n;
  }

  /** Messages whose publish was confirmed. */
  published(): OutgoingMessage[] {
    return this.events.flatMap((e) => (e.kind === 'published' && e.ok ? [...e.messages] : []));
  }

  connect(): Promise<void> {
    return this.inner.connect();
  }

  assertQueue(queue: string): Promise<void> {
    return this.inner.assertQueue(queue);
  }

  async publish(messages: readonly OutgoingMessage[]): Promise<void> {
    this.events.push({ kind: 'publish', at: nextSeq(), messages });
    if (this.#failNext > 0) {
      this.#failNext--;
      this.events.push({ kind: 'published', at: nextSeq(), messages, ok: false });
      throw new TransportError(ErrorCode.TRANSPORT_UNAVAILABLE, 'SpyTransport: injected publish failure');
    }
    try {
      await this.inner.publish(messages);
      this.events.push({ kind: 'published', at: nextSeq(), messages, ok: true });
    } catch (err) {
      this.events.push({ kind: 'published', at: nextSeq(), messages, ok: false });
      throw err;
    }
  }

  consume(queue: string, options: ConsumeOptions, handler: DeliveryHandler): Consumer {
    return this.inner.consume(queue, options, (d) => handler(this.#wrap(d)));
  }

  subscribe(topic: string, options: Partial<ConsumeOptions>, handler: DeliveryHandler): Consumer {
    return this.inner.subscribe(topic, options, (d) => handler(this.#wrap(d)));
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  #wrap(d: Delivery): Delivery {
    const events = this.events;
    const next = nextSeq;
    return {
      queue: d.queue,
      body: d.body,
      properties: d.properties,
      deliveryCount: d.deliveryCount,
      redelivered: d.redelivered,
      ack() {
        events.push({ kind: 'ack', at: next(), queue: d.queue, messageId: d.properties.messageId });
        d.ack();
      },
      reject(requeue: boolean) {
        events.push({
          kind: 'reject',
          at: next(),
          queue: d.queue,
          messageId: d.properties.messageId,
          requeue,
        });
        d.reject(requeue);
      },
    };
  }
}
