import { EventEmitter } from 'node:events';
import { ErrorCode, TransportError } from '../errors.ts';
import type { InMemoryBroker } from './InMemoryBroker.ts';
import { InMemoryChannel } from './InMemoryChannel.ts';

export interface InMemoryConnectionEventMap {
  /** The connection closed; `error` is set when the broker dropped it (fault injection). */
  close: [error: TransportError | undefined];
  /** The broker stopped accepting publishes (emulated memory alarm). */
  blocked: [reason: string];
  unblocked: [];
}

/**
 * One client connection to an {@link InMemoryBroker}, like an AMQP connection: it owns channels and exclusive
 * queues, and closing it (or the broker dropping it) closes every channel, requeueing unacked messages.
 */
export class InMemoryConnection extends EventEmitter<InMemoryConnectionEventMap> {
  readonly name: string;
  private readonly broker: InMemoryBroker;
  private readonly channels = new Set<InMemoryChannel>();
  private isOpen = true;

  /** @internal Made by {@link InMemoryBroker.connect}. */
  constructor(broker: InMemoryBroker, name: string) {
    super();
    this.broker = broker;
    this.name = name;
  }

  get open(): boolean {
    return this.isOpen;
  }

  /** Opens a channel. */
  async createChannel(): Promise<InMemoryChannel> {
    await Promise.resolve();
    if (!this.isOpen)
      throw new TransportError(ErrorCode.TRANSPORT_UNAVAILABLE, `connection '${this.name}' is closed`);
    const channel = new InMemoryChannel(this, this.broker);
    this.channels.add(channel);
    return channel;
  }

  /** Closes the connection from the client side. Idempotent. */
  close(): Promise<void> {
    this.terminate(undefined);
    return Promise.resolve();
  }

  /** @internal Closes every channel and exclusive queue, then emits `close` (with `error` when dropped). */
  terminate(error: TransportError | undefined): void {
    if (!this.isOpen) return;
    this.isOpen = false;
    for (const channel of [...this.channels]) channel.shutdown(error);
    this.broker.connectionClosed(this);
    this.emit('close', error);
  }

  /** @internal */
  channelClosed(channel: InMemoryChannel): void {
    this.channels.delete(channel);
  }

  /** @internal Number of unacked deliveries over all channels. */
  get unackedCount(): number {
    let n = 0;
    for (const channel of this.channels) n += channel.unackedCount;
    return n;
  }
}
