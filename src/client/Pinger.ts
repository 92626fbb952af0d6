import type { PingPong } from './clientEvents.ts';
import { monotonicNow, roundMs } from './timing.ts';

type Timer = ReturnType<typeof setTimeout>;

/** Timing of {@link Pinger}, in ms. */
export interface PingerTiming {
  initialDelayMinMs: number;
  initialDelayMaxMs: number;
  intervalMs: number;
  historySize: number;
  /** A PING unanswered this long means the server (or the path to it) is silent. */
  pongTimeoutMs: number;
}

/**
 * Sends `PING{x}` while a session is established: first after a random delay (3-7 s by default, so a mass
 * reconnect does not ping in step), then every interval (15 s). `x` counts from "0" per client. The PONG gives the
 * round-trip time; the last `historySize` PingPongs are kept. A PING left unanswered for `pongTimeoutMs` calls
 * `onSilent` (the owner drops the connection and reconnects): a server that accepts frames but never answers
 * would otherwise hold the session forever, and the unanswered PINGs would pile up.
 */
export class Pinger {
  private readonly timing: PingerTiming;
  private readonly sendPing: (pingId: string) => void;
  private readonly onPong: (pingPong: PingPong) => void;
  private readonly onSilent: (silentForMs: number) => void;
  private readonly outstanding = new Map<string, { sentAt: number; pingPong: PingPong }>();
  private readonly history: PingPong[] = [];
  private nextPingId = 0;
  private timer: Timer | undefined;
  private pongTimer: Timer | undefined;

  constructor(
    timing: PingerTiming,
    sendPing: (pingId: string) => void,
    onPong: (pingPong: PingPong) => void,
    onSilent: (silentForMs: number) => void,
  ) {
    this.timing = timing;
    this.sendPing = sendPing;
    this.onPong = onPong;
    this.onSilent = onSilent;
  }

  /** PINGs sent and not yet answered on this connection. */
  get unanswered(): number {
    return this.outstanding.size;
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
    if (this.pongTimer !== undefined) clearTimeout(this.pongTimer);
    this.pongTimer = undefined;
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
      this.armPongTimer(this.timing.pongTimeoutMs);
      this.schedule(this.timing.intervalMs);
    }, delayMs);
  }

  /** One timer watches the oldest unanswered PING; it re-arms for the next one when that was answered. */
  private armPongTimer(delayMs: number): void {
    if (this.pongTimer !== undefined) return;
    this.pongTimer = setTimeout(() => {
      this.pongTimer = undefined;
      const oldest = this.outstanding.values().next().value;
      if (!oldest) return;
      const waited = monotonicNow() - oldest.sentAt;
      if (waited >= this.timing.pongTimeoutMs) {
        this.stop();
        this.onSilent(roundMs(waited));
      } else this.armPongTimer(this.timing.pongTimeoutMs - waited);
    }, delayMs);
  }
}
