import { WebSocket } from 'ws';
import { MatsSocketClient } from '../../src/client/MatsSocketClient.ts';
import type { WebSocketConstructor } from '../../src/client/WebSocketLike.ts';
import { fastClientTimings } from '../helpers/clientKit.ts';
import { testAuth } from '../../harness/startTestCluster.ts';
import { AbuseEndpoints, type AbuseEchoReply } from './abuseEndpoints.ts';

/** What the well-behaved client saw during one test. */
export interface GoodClientFigures {
  sent: number;
  /** Requests answered exactly once with their own id. */
  answered: number;
  /** Ids whose request rejected (timeout, session closed) or was answered with another id. */
  lost: string[];
  /** Ids answered more than once (client events, or several distinct reply smids on the wire). */
  doubled: string[];
  /** RETRY envelopes received. */
  retries: number;
  /** Round-trip times, ms. */
  latenciesMs: number[];
}

/** Nearest-rank percentile, ms; NaN for no samples. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/**
 * A well-behaved user (our typed client) that requests `Abuse.echo` at a steady rate (open loop: one request every
 * `intervalMs` whatever the answers do, so a stalled server shows as latency, not as fewer samples) and accounts
 * for every request: answered once, lost, doubled, RETRYs on the wire.
 */
export class GoodClient {
  readonly client: MatsSocketClient;
  readonly #prefix: string;
  readonly #figures: GoodClientFigures = {
    sent: 0,
    answered: 0,
    lost: [],
    doubled: [],
    retries: 0,
    latenciesMs: [],
  };
  readonly #outcomes = new Map<string, number>();
  readonly #replySmids = new Map<string, Set<string>>();
  readonly #pending = new Set<Promise<void>>();
  #timer: NodeJS.Timeout | undefined;

  constructor(url: string, userId: string, prefix: string, requestTimeoutMs = 10_000) {
    this.#prefix = prefix;
    this.client = new MatsSocketClient({
      appName: 'AbuseGood',
      appVersion: '1.0.0',
      urls: [url],
      webSocket: this.#countingWebSocket(),
      ...fastClientTimings,
      requestTimeoutMs,
    });
    this.client.setCurrentAuthorization(testAuth(userId));
    this.client.on('initiation:processed', (e) => {
      if (e.kind === 'REQUEST') this.#outcomes.set(e.traceId, (this.#outcomes.get(e.traceId) ?? 0) + 1);
    });
  }

  /** One request now; resolves when it settled (never rejects). */
  request(): Promise<void> {
    const id = `${this.#prefix}-${++this.#figures.sent}`;
    const started = performance.now();
    const p = this.client.request<AbuseEchoReply>(AbuseEndpoints.echo, id, { id }).then(
      (reply) => {
        this.#figures.latenciesMs.push(performance.now() - started);
        if (reply.data.id === id) this.#figures.answered++;
        else this.#figures.lost.push(id);
      },
      () => void this.#figures.lost.push(id),
    );
    this.#pending.add(p);
    void p.finally(() => this.#pending.delete(p));
    return p;
  }

  /** Forgets the latencies so far (the warm-up's first requests pay for JIT and connection setup). */
  resetLatencies(): void {
    this.#figures.latenciesMs.length = 0;
  }

  /** Requests answered so far. */
  get answered(): number {
    return this.#figures.answered;
  }

  /** Starts requesting every `intervalMs`, after one request that establishes the session. */
  async start(intervalMs = 25): Promise<void> {
    await this.request();
    this.#timer = setInterval(() => void this.request(), intervalMs);
  }

  /** Stops requesting, waits for every outstanding request (each bounded by its timeout), returns the figures. */
  async finish(): Promise<GoodClientFigures> {
    clearInterval(this.#timer);
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
    for (const [tid, n] of this.#outcomes) if (n > 1) this.#figures.doubled.push(tid);
    for (const [tid, smids] of this.#replySmids)
      if (smids.size > 1 && !this.#figures.doubled.includes(tid)) this.#figures.doubled.push(tid);
    return this.#figures;
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.client.close('abuse test over');
  }

  /** A `ws` WebSocket that also counts RETRYs and reply smids per tid from the raw frames. */
  #countingWebSocket(): WebSocketConstructor {
    const onEnvelope = (e: Record<string, unknown>): void => {
      if (e.t === 'RETRY') this.#figures.retries++;
      if ((e.t === 'RESOLVE' || e.t === 'REJECT') && typeof e.tid === 'string') {
        let smids = this.#replySmids.get(e.tid);
        if (!smids) this.#replySmids.set(e.tid, (smids = new Set()));
        smids.add(String(e.smid));
      }
    };
    return class CountingWebSocket extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols);
        this.addEventListener('message', (event) => {
          if (typeof event.data !== 'string') return;
          let frame: unknown;
          try {
            frame = JSON.parse(event.data);
          } catch {
            return;
          }
          if (Array.isArray(frame)) for (const e of frame as Record<string, unknown>[]) onEnvelope(e);
        });
      }
    };
  }
}
