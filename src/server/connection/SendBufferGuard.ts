import type { ConnectionLimit } from '../ServerMetrics.ts';

/** The part of a `ws` WebSocket the guard reads. */
interface BufferedSocket {
  readonly bufferedAmount: number;
}

export interface SendBufferLimits {
  /** `limits.maxSendBufferBytes`. */
  maxBytes: number;
  /** `timings.sendDrainTimeoutMs`. */
  drainTimeoutMs: number;
}

/**
 * Bounds what one connection keeps in its send buffer when the peer reads slowly or not at all. Every write from
 * memory (PUB, PONG, ACK, ...) is otherwise fire-and-forget, so a peer that never reads makes the node buffer
 * whatever it is sent: a frame that would take the buffer past `maxBytes` trips, and so does a buffer from which
 * nothing was flushed to the socket for `drainTimeoutMs`. Inbound traffic plays no part: a peer that keeps
 * sending PINGs but never reads is still not draining.
 */
export class SendBufferGuard {
  readonly #socket: BufferedSocket;
  readonly #limits: SendBufferLimits;
  readonly #onTrip: (limit: ConnectionLimit, reason: string) => void;
  #timer: NodeJS.Timeout | undefined;
  #flushes = 0;
  #flushesAtCheck = 0;
  #stopped = false;

  constructor(
    socket: BufferedSocket,
    limits: SendBufferLimits,
    onTrip: (limit: ConnectionLimit, reason: string) => void,
  ) {
    this.#socket = socket;
    this.#limits = limits;
    this.#onTrip = onTrip;
  }

  /**
   * Whether a frame of `chars` characters may be written now; false has already tripped. An empty buffer always
   * takes the frame, so a frame larger than the limit still goes out to a reading peer.
   */
  admit(chars: number): boolean {
    if (this.#stopped) return false;
    const buffered = this.#socket.bufferedAmount;
    if (buffered === 0 || buffered + chars <= this.#limits.maxBytes) return true;
    this.#trip(
      'send_buffer',
      `Send buffer full: ${buffered} bytes unsent and a frame of ${chars} characters waiting`,
    );
    return false;
  }

  /** A write was handed to the socket. */
  wrote(): void {
    if (this.#stopped || this.#timer) return;
    this.#flushesAtCheck = this.#flushes;
    this.#timer = setTimeout(() => this.#check(), this.#limits.drainTimeoutMs);
  }

  /** A write reached the socket (its send callback ran). */
  flushed(): void {
    this.#flushes++;
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #check(): void {
    if (this.#stopped) return;
    if (this.#socket.bufferedAmount === 0) {
      this.#timer = undefined;
      return;
    }
    if (this.#flushes === this.#flushesAtCheck) {
      this.#trip(
        'send_drain',
        `Send buffer not drained: nothing flushed for ${this.#limits.drainTimeoutMs} ms`,
      );
      return;
    }
    this.#flushesAtCheck = this.#flushes;
    this.#timer?.refresh();
  }

  #trip(limit: ConnectionLimit, reason: string): void {
    this.stop();
    this.#onTrip(limit, reason);
  }
}
