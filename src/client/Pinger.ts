import type { PingPong } from './clientEvents.ts';
import { monotonicNow, roundMs } from './timing.ts';

type Timer = ReturnType<typeof setTimeout>;

/** Timing of {@link Pinger}, in ms. */
export interface PingerTiming {
  initialDelayMinMs: number;
  initialDelayMaxMs: number;
  intervalMs: number;
  historySize: number;
}

/**
 * Sends `PING{x}` while a session is established: first after a random delay (3-7 s by default, so a mass
 * reconnect does not ping in step), then every interval (15 s). `x` counts from "0" per client. The PONG gives the
 * round-trip time; the last `historySize` PingPongs are kept.
 */
export class Pinger {
  private readonly timing: PingerTiming;
  private readonly sendPing: (pingId: string) => void;
  private readonly onPong: (pingPong: PingPong) => void;
  private readonly outstanding = new Map<string, { sentAt: number; pingPong: PingPong }>();
  private readonly history: PingPong[] = [];
  private nextPingId = 0;
  private timer: Timer | undefined;

  constructor(
    timing: PingerTiming,
    sendPing: (pingId: string) => void,
    onPong: (pingPong: PingPong) => void,
  ) {
    this.timing = timing;
    this.sendPing = sendPing;
    this.onPong = onPong;
  }

  /** The last PingPongs, oldest first. */
  get pings(): readonly PingPong[] {
    return this.history;
  }

  start(): void {
    this.stop();
    const { initialDelayMinMs: min, initialDelayMaxMs: max } = this.timing;
    this.schedule(min + Math.random() * (max - min));
  }

  /** Stops pinging; PINGs still unanswered are forgotten (their connection is gone). */
  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.outstanding.clear();
  }

  handlePong(pingId: string): void {
    const entry = this.outstanding.get(pingId);
    if (!entry) return;
    this.outstanding.delete(pingId);
    entry.pingPong.roundTripMs = roundMs(monotonicNow() - entry.sentAt);
    this.onPong(entry.pingPong);
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const pingId = String(this.nextPingId++);
      const pingPong: PingPong = { pingId, sentTimestamp: Date.now() };
      this.history.push(pingPong);
      while (this.history.length > this.timing.historySize) this.history.shift();
      this.outstanding.set(pingId, { sentAt: monotonicNow(), pingPong });
      this.sendPing(pingId);
      this.schedule(this.timing.intervalMs);
    }, delayMs);
  }
}
