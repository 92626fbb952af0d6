import type { C2SAck, C2SAck2, C2SEnvelope } from '../protocol/envelopes.ts';

type Timer = ReturnType<typeof setTimeout>;

/** Timing of {@link AckBatcher}, in ms. */
export interface AckBatcherTiming {
  ackDelayMs: number;
  ack2DelayMs: number;
  /** More than this many pending ids are sent at once. */
  maxPending: number;
}

/**
 * Batches the client's ACK/NACK (of server smids) and ACK2 (of client cmids), like the official client: ACK/NACK
 * after 20 ms, ACK2 after 50 ms, each re-armed per new id, and at once when more than 10 are pending, or when
 * another frame is sent ({@link flushNow}). One id goes in `smid`/`cmid`, several in `ids`. A NACK with a
 * description goes out on its own (docs/protocol.md section 4).
 */
export class AckBatcher {
  private readonly timing: AckBatcherTiming;
  private readonly enqueue: (envelope: C2SEnvelope) => void;
  private acks: string[] = [];
  private nacks: string[] = [];
  private ack2s: string[] = [];
  private ackTimer: Timer | undefined;
  private ack2Timer: Timer | undefined;

  constructor(timing: AckBatcherTiming, enqueue: (envelope: C2SEnvelope) => void) {
    this.timing = timing;
    this.enqueue = enqueue;
  }

  ack(smid: string): void {
    if (!this.acks.includes(smid)) this.acks.push(smid);
    this.scheduleAcks();
  }

  nack(smid: string, description?: string): void {
    if (description !== undefined) {
      this.enqueue({ t: 'NACK', smid, desc: description });
      return;
    }
    if (!this.nacks.includes(smid)) this.nacks.push(smid);
    this.scheduleAcks();
  }

  ack2(cmids: readonly string[]): void {
    for (const cmid of cmids) if (!this.ack2s.includes(cmid)) this.ack2s.push(cmid);
    if (this.ack2Timer !== undefined) clearTimeout(this.ack2Timer);
    this.ack2Timer = undefined;
    if (this.ack2s.length > this.timing.maxPending) this.flushAck2s();
    else this.ack2Timer = setTimeout(() => this.flushAck2s(), this.timing.ack2DelayMs);
  }

  /**
   * Sends everything pending now: a frame is about to go anyway, and acknowledgements riding on it cost no frame
   * of their own (a client that sends its next request on a reply would otherwise send the reply's ACK and the
   * request's ACK2 each in a frame of their own, one and two delays later).
   */
  flushNow(): void {
    if (this.ackTimer !== undefined) clearTimeout(this.ackTimer);
    if (this.ack2Timer !== undefined) clearTimeout(this.ack2Timer);
    this.flushAcks();
    this.flushAck2s();
  }

  /** Drops everything pending (the session is gone, so the ids mean nothing to a new one). */
  clear(): void {
    if (this.ackTimer !== undefined) clearTimeout(this.ackTimer);
    if (this.ack2Timer !== undefined) clearTimeout(this.ack2Timer);
    this.ackTimer = this.ack2Timer = undefined;
    this.acks = [];
    this.nacks = [];
    this.ack2s = [];
  }

  private scheduleAcks(): void {
    if (this.ackTimer !== undefined) clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    if (this.acks.length + this.nacks.length > this.timing.maxPending) this.flushAcks();
    else this.ackTimer = setTimeout(() => this.flushAcks(), this.timing.ackDelayMs);
  }

  private flushAcks(): void {
    this.ackTimer = undefined;
    const batch = (t: 'ACK' | 'NACK', ids: string[]): void => {
      if (ids.length === 0) return;
      const envelope: C2SAck = ids.length === 1 ? { t, smid: ids[0]! } : { t, ids };
      this.enqueue(envelope);
    };
    const [acks, nacks] = [this.acks, this.nacks];
    this.acks = [];
    this.nacks = [];
    batch('ACK', acks);
    batch('NACK', nacks);
  }

  private flushAck2s(): void {
    this.ack2Timer = undefined;
    const ids = this.ack2s;
    this.ack2s = [];
    if (ids.length === 0) return;
    const envelope: C2SAck2 = ids.length === 1 ? { t: 'ACK2', cmid: ids[0]! } : { t: 'ACK2', ids };
    this.enqueue(envelope);
  }
}
