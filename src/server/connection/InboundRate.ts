/**
 * A token bucket over the bytes one connection sends. Every byte a client sends costs the node CPU (unmasking,
 * UTF-8 decoding, JSON parsing: ~13 ms per MiB measured), so without a rate one connection sending 4 MiB frames
 * as fast as loopback allows kept the node busy for seconds and another client's request waited 2.7 s. Over the
 * rate the connection's socket is not read (TCP backpressure) until the bucket has refilled; a frame larger than
 * the burst is still taken whole (ws has buffered it already) and paid for afterwards.
 */
export class InboundRate {
  readonly #bytesPerSecond: number;
  readonly #burstBytes: number;
  readonly #now: () => number;
  #tokens: number;
  #at: number;

  constructor(bytesPerSecond: number, burstBytes: number, now: () => number = () => performance.now()) {
    this.#bytesPerSecond = bytesPerSecond;
    this.#burstBytes = burstBytes;
    this.#now = now;
    this.#tokens = burstBytes;
    this.#at = now();
  }

  /** Takes `bytes`; returns how long (ms) to stop reading before the next frame, 0 to go on. */
  take(bytes: number): number {
    const now = this.#now();
    this.#tokens = Math.min(
      this.#burstBytes,
      this.#tokens + ((now - this.#at) * this.#bytesPerSecond) / 1000,
    );
    this.#at = now;
    this.#tokens -= bytes;
    return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens * 1000) / this.#bytesPerSecond);
  }
}

/** The part of a `ws` WebSocket that reading is paused and resumed through. */
export interface PausableSocket {
  pause(): void;
  resume(): void;
  readonly isPaused: boolean;
}

/** The limits {@link InboundFlow} applies. */
export interface InboundFlowLimits {
  maxQueuedFrames: number;
  maxQueuedInboundBytes: number;
  maxInboundBytesPerSecond: number;
  inboundBurstBytes: number;
}

/**
 * When a connection's socket is read: not while too many frames (or bytes) wait for the ones before them to be
 * processed (each awaits the plugin or the store), and not while the connection is over its byte rate. Reading
 * resumes when neither holds: the queue at half its bounds and the rate's pause over.
 */
export class InboundFlow {
  readonly #ws: PausableSocket;
  readonly #limits: InboundFlowLimits;
  readonly #trip: (limit: 'inbound_queue' | 'inbound_rate') => void;
  readonly #rate: InboundRate;
  #frames = 0;
  #bytes = 0;
  #rateTimer: NodeJS.Timeout | undefined;

  constructor(
    ws: PausableSocket,
    limits: InboundFlowLimits,
    trip: (limit: 'inbound_queue' | 'inbound_rate') => void,
  ) {
    this.#ws = ws;
    this.#limits = limits;
    this.#trip = trip;
    this.#rate = new InboundRate(limits.maxInboundBytesPerSecond, limits.inboundBurstBytes);
  }

  /** A frame of `bytes` arrived and waits to be processed; call the returned function once it is. */
  admit(bytes: number): () => void {
    this.#frames++;
    this.#bytes += bytes;
    if (this.#frames > this.#limits.maxQueuedFrames || this.#bytes > this.#limits.maxQueuedInboundBytes) {
      if (!this.#ws.isPaused) this.#trip('inbound_queue');
      this.#ws.pause();
    }
    const waitMs = this.#rate.take(bytes);
    if (waitMs > 0 && this.#rateTimer === undefined) {
      this.#trip('inbound_rate');
      this.#ws.pause();
      this.#rateTimer = setTimeout(() => {
        this.#rateTimer = undefined;
        this.#maybeResume();
      }, waitMs);
    }
    return () => {
      this.#frames--;
      this.#bytes -= bytes;
      this.#maybeResume();
    };
  }

  /** The connection is gone: no timer left behind. */
  stop(): void {
    clearTimeout(this.#rateTimer);
    this.#rateTimer = undefined;
  }

  #maybeResume(): void {
    if (
      this.#ws.isPaused &&
      this.#rateTimer === undefined &&
      this.#frames <= this.#limits.maxQueuedFrames / 2 &&
      this.#bytes <= this.#limits.maxQueuedInboundBytes / 2
    )
      this.#ws.resume();
  }
}
