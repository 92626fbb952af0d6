import { ErrorCode, TransportError } from '../errors.ts';
import { deferred } from '../util/deferred.ts';
import type { AmqpPublishOptions } from './amqpProperties.ts';

/** The confirm-channel surface the pool uses (amqplib's `ConfirmChannel`, structurally). */
export interface ConfirmChannelLike {
  publish(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options: AmqpPublishOptions,
    callback: (err: unknown) => void,
  ): boolean;
  once(event: 'drain', listener: () => void): unknown;
}

/** One message to publish through the pool. */
export interface PoolMessage {
  exchange: string;
  routingKey: string;
  body: Buffer;
  options: AmqpPublishOptions;
}

/** A publish's confirm: `returned` is a mandatory publish the broker returned (no such queue), then acked. */
export type ConfirmOutcome = 'ack' | 'nack' | 'returned';

/** Reports the end of message `index` of a batch: its confirm outcome, or `error` when it has none. */
export type SettleFn = (index: number, outcome: ConfirmOutcome | undefined, error: Error | undefined) => void;

interface Slot {
  readonly channel: ConfirmChannelLike;
  open: boolean;
  unconfirmed: number;
  /** Set while the socket buffer is full (`publish` returned false) until `drain`. */
  draining: boolean;
  /** `messageId \0 routingKey` -> returns not yet matched with their confirm. */
  readonly returned: Map<string, number>;
}

interface Waiter {
  /** Waits for room on this channel (the rest of a batch), or on any when undefined. */
  slot: Slot | undefined;
  resolve: (slot: Slot) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * Spreads publishes over a few confirm channels, at most `maxUnconfirmed` unconfirmed per channel, and pauses a
 * channel whose write buffer is full until it drains (the message *was* buffered, so it is not sent again).
 * A publish waiting for room gives up at its deadline, so nothing queues up without bound.
 */
export class PublishChannelPool {
  private readonly slots: Slot[] = [];
  private readonly waiters: Waiter[] = [];
  private readonly maxUnconfirmed: number;
  private next = 0;

  constructor(maxUnconfirmed: number) {
    this.maxUnconfirmed = maxUnconfirmed;
  }

  get size(): number {
    return this.slots.length;
  }

  /** Adds a channel; returns the handle the owner reports returns and the close with. */
  add(channel: ConfirmChannelLike): {
    returned(messageId: string, routingKey: string): void;
    closed(): void;
  } {
    const slot: Slot = { channel, open: true, unconfirmed: 0, draining: false, returned: new Map() };
    this.slots.push(slot);
    this.wake();
    return {
      returned: (messageId, routingKey) => {
        const key = `${messageId}\0${routingKey}`;
        slot.returned.set(key, (slot.returned.get(key) ?? 0) + 1);
      },
      closed: () => {
        slot.open = false;
        const i = this.slots.indexOf(slot);
        if (i >= 0) this.slots.splice(i, 1);
        this.wake();
      },
    };
  }

  /** Fails every waiting publish (the connection is gone). */
  clear(error: Error): void {
    for (const s of this.slots) s.open = false;
    this.slots.length = 0;
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(error);
    }
  }

  /**
   * Publishes `messages` in order on **one** channel (so a batch keeps its order in a queue), waiting for room
   * (unconfirmed below the bound, write buffer drained) until `deadline` (epoch ms). One promise per message,
   * resolving with its confirm. With room, the whole batch is written synchronously.
   */
  publishBatch(messages: readonly PoolMessage[], deadline: number): Array<Promise<ConfirmOutcome>> {
    const results = messages.map(() => deferred<ConfirmOutcome>());
    this.publishEach(messages, deadline, (i, outcome, error) => {
      if (error === undefined) results[i]!.resolve(outcome!);
      else results[i]!.reject(error);
    });
    return results.map((r) => r.promise);
  }

  /**
   * Like {@link publishBatch}, but reports each message's end through `settle(index, outcome, error)` (exactly once
   * per message, `error` set on failure) instead of a promise per message: the hot path allocates no promise.
   */
  publishEach(messages: readonly PoolMessage[], deadline: number, settle: SettleFn): void {
    let slot: Slot | undefined;
    for (let i = 0; i < messages.length; i++) {
      // pick() and reserve() take the room (unconfirmed + 1) synchronously, so waiters cannot overshoot.
      const next = slot === undefined ? this.pick() : this.reserve(slot) ? slot : undefined;
      if (next === undefined) {
        void this.sendRestAsync(messages, i, slot, deadline, settle);
        return;
      }
      slot = next;
      this.send(slot, messages[i]!, i, settle);
    }
  }

  /** The slow path of {@link publishEach}: waits for room for message `from` onwards. */
  private async sendRestAsync(
    messages: readonly PoolMessage[],
    from: number,
    slot: Slot | undefined,
    deadline: number,
    settle: SettleFn,
  ): Promise<void> {
    for (let i = from; i < messages.length; i++) {
      try {
        if (slot === undefined) slot = this.pick() ?? (await this.waitForRoom(undefined, deadline));
        else if (!this.reserve(slot)) slot = await this.waitForRoom(slot, deadline);
      } catch (error) {
        for (let j = i; j < messages.length; j++) settle(j, undefined, error as Error);
        return;
      }
      this.send(slot, messages[i]!, i, settle);
    }
  }

  private send(slot: Slot, m: PoolMessage, index: number, settle: SettleFn): void {
    let ok: boolean;
    try {
      // An inline callback: one closure per message is the minimum amqplib's confirm API allows.
      ok = slot.channel.publish(m.exchange, m.routingKey, m.body, m.options, (err: unknown) =>
        this.confirmed(slot, m, index, settle, err),
      );
    } catch (error) {
      slot.unconfirmed--;
      settle(
        index,
        undefined,
        new TransportError(ErrorCode.TRANSPORT_UNAVAILABLE, 'publish failed', { cause: error }),
      );
      return;
    }
    if (!ok && !slot.draining) {
      // The message *is* buffered: do not send it again, but send nothing more on this channel until 'drain'.
      slot.draining = true;
      slot.channel.once('drain', () => {
        slot.draining = false;
        this.wake();
      });
    }
  }

  private confirmed(slot: Slot, m: PoolMessage, index: number, settle: SettleFn, err: unknown): void {
    slot.unconfirmed--;
    if (this.waiters.length > 0) this.wake();
    if (err) {
      // amqplib reports a nack as 'message nacked' and a channel closing with the message unconfirmed as
      // 'channel closed': the latter is an unknown outcome, the caller re-sends.
      if (err instanceof Error && err.message === 'message nacked') settle(index, 'nack', undefined);
      else
        settle(
          index,
          undefined,
          new TransportError(ErrorCode.TRANSPORT_UNAVAILABLE, 'channel closed before the confirm', {
            cause: err,
          }),
        );
      return;
    }
    if (slot.returned.size > 0) {
      const key = `${m.options.messageId}\0${m.routingKey}`;
      const returns = slot.returned.get(key) ?? 0;
      if (returns > 0) {
        if (returns === 1) slot.returned.delete(key);
        else slot.returned.set(key, returns - 1);
        settle(index, 'returned', undefined);
        return;
      }
    }
    settle(index, 'ack', undefined);
  }

  private reserve(s: Slot): boolean {
    if (!this.hasRoom(s)) return false;
    s.unconfirmed++;
    return true;
  }

  private hasRoom(s: Slot): boolean {
    return s.open && !s.draining && s.unconfirmed < this.maxUnconfirmed;
  }

  private pick(): Slot | undefined {
    const n = this.slots.length;
    for (let i = 0; i < n; i++) {
      const s = this.slots[(this.next + i) % n]!;
      if (this.reserve(s)) {
        this.next = (this.next + i + 1) % n;
        return s;
      }
    }
    return undefined;
  }

  private waitForRoom(slot: Slot | undefined, deadline: number): Promise<Slot> {
    return new Promise<Slot>((resolve, reject) => {
      const waiter: Waiter = {
        slot,
        resolve,
        reject,
        timer: setTimeout(
          () => {
            const i = this.waiters.indexOf(waiter);
            if (i >= 0) this.waiters.splice(i, 1);
            reject(
              new TransportError(
                ErrorCode.TRANSPORT_CONFIRM_TIMEOUT,
                'no publish channel had room before the confirm timeout',
              ),
            );
          },
          Math.max(0, deadline - Date.now()),
        ),
      };
      this.waiters.push(waiter);
    });
  }

  private wake(): void {
    let anyFull = false;
    for (const w of [...this.waiters]) {
      let slot: Slot | undefined;
      if (w.slot) {
        if (!w.slot.open) {
          this.removeWaiter(w);
          w.reject(
            new TransportError(ErrorCode.TRANSPORT_UNAVAILABLE, 'publish channel closed during the batch'),
          );
          continue;
        }
        if (this.reserve(w.slot)) slot = w.slot;
      } else if (!anyFull) {
        slot = this.pick();
        anyFull = slot === undefined;
      }
      if (slot) {
        this.removeWaiter(w);
        w.resolve(slot);
      }
    }
  }

  private removeWaiter(w: Waiter): void {
    clearTimeout(w.timer);
    const i = this.waiters.indexOf(w);
    if (i >= 0) this.waiters.splice(i, 1);
  }
}
