import { performance } from 'node:perf_hooks';
import { cpuSnapshot } from '../pipeline/cpu.ts';

/** What one phase (one loop, one round) of `npm run bench:mats` measured. */
export interface PhaseResult {
  roundTrips: number;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU time of this (client) process per round trip, in µs. */
  cpuUsPerTrip: number;
  /** CPU time of the local RabbitMQ server per round trip, in µs (Linux /proc, 10 ms ticks; NaN elsewhere). */
  brokerCpuUsPerTrip: number;
}

/** How long a phase runs and how many round trips it keeps in flight. */
export interface PhaseTiming {
  inFlight: number;
  /** Not measured: lets JIT, connections and prefetch buffers settle. */
  warmupMs: number;
  measureMs: number;
}

/** Drives `inFlight` concurrent request/reply loops: `send(done)` starts one; `done()` records it and starts the next. */
export class LoopDriver {
  readonly latencies: number[] = [];
  #measuring = false;
  #stopped = false;
  #count = 0;
  #inFlight = 0;
  #drained: (() => void) | undefined;
  readonly #send: (onReply: () => void) => void;
  readonly #timing: PhaseTiming;

  constructor(timing: PhaseTiming, send: (onReply: () => void) => void) {
    this.#timing = timing;
    this.#send = send;
  }

  async run(): Promise<PhaseResult> {
    for (let i = 0; i < this.#timing.inFlight; i++) this.#start();
    await sleep(this.#timing.warmupMs);
    this.#measuring = true;
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const broker0 = brokerCpuMs();
    await sleep(this.#timing.measureMs);
    const cpu = process.cpuUsage(cpu0);
    const brokerMs = brokerCpuMs() - broker0;
    const seconds = (performance.now() - t0) / 1000;
    this.#measuring = false;
    const roundTrips = this.#count;
    this.#stopped = true;
    // Let the outstanding round trips finish, so the next phase starts on a quiet broker.
    if (this.#inFlight > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const pick = (q: number): number =>
      sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
    return {
      roundTrips,
      seconds,
      perSecond: roundTrips / seconds,
      p50Ms: pick(0.5),
      p99Ms: pick(0.99),
      cpuUsPerTrip: (cpu.user + cpu.system) / Math.max(1, roundTrips),
      brokerCpuUsPerTrip: (brokerMs * 1000) / Math.max(1, roundTrips),
    };
  }

  #start(): void {
    if (this.#stopped) return;
    const t = performance.now();
    this.#inFlight++;
    this.#send(() => {
      this.#inFlight--;
      if (this.#measuring) {
        this.#count++;
        this.latencies.push(performance.now() - t);
      }
      if (this.#stopped) {
        if (this.#inFlight === 0) this.#drained?.();
      } else this.#start();
    });
  }
}

/** CPU ms the local RabbitMQ (`beam.smp`) has used so far; NaN when it is not visible (not Linux, remote broker). */
function brokerCpuMs(): number {
  try {
    return cpuSnapshot().rabbitmq ?? NaN;
  } catch {
    return NaN;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The mean of several phases of one loop (rates from the totals, percentiles and CPU averaged). */
export function meanOf(results: readonly PhaseResult[]): PhaseResult {
  const sum = (f: (r: PhaseResult) => number): number => results.reduce((a, r) => a + f(r), 0);
  const roundTrips = sum((r) => r.roundTrips);
  const seconds = sum((r) => r.seconds);
  return {
    roundTrips,
    seconds,
    perSecond: roundTrips / seconds,
    p50Ms: sum((r) => r.p50Ms) / results.length,
    p99Ms: sum((r) => r.p99Ms) / results.length,
    cpuUsPerTrip: sum((r) => r.cpuUsPerTrip) / results.length,
    brokerCpuUsPerTrip: sum((r) => r.brokerCpuUsPerTrip) / results.length,
  };
}
