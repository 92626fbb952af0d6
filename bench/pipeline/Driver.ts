import { performance } from 'node:perf_hooks';
import { cpuPerOp, cpuSnapshot } from './cpu.ts';

/** The figures of one measured phase. */
export interface PhaseResult {
  name: string;
  /** Round trips kept in flight (closed loop); for a paced phase the most that were in flight at once. */
  inflight: number;
  roundTrips: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  /** Round trips that failed (rejected) during the measurement. */
  errors: number;
  /**
   * CPU ms per round trip during the measurement, by process: `bench` (this process: clients, nodes, backend),
   * `rabbitmq`, `mariadb` (the local servers; on 2 CPUs their sum bounds the throughput at 2000 / sum per second).
   */
  cpuMsPerTrip: Record<string, number>;
  /**
   * Work per round trip read from the system's counters (a {@link CounterProbe}) at the measurement's edges, e.g.
   * `db_roundtrips`, `sql_server`, `broker_msgs`; empty without a probe.
   */
  countsPerTrip: Record<string, number>;
}

/**
 * Reads cumulative counters of the system under test (statements, publishes; from its processes or servers). Read
 * just before and just after the measurement: a child answers after its current event-loop turn, so a window's
 * edges can be off by a few trips (well under 1 % of a 3 s window).
 */
export type CounterProbe = () => Promise<Record<string, number>>;

function perTrip(
  before: Record<string, number>,
  after: Record<string, number>,
  trips: number,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) out[k] = trips > 0 ? (v - (before[k] ?? 0)) / trips : NaN;
  return out;
}

const noCounters: CounterProbe = () => Promise.resolve({});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function pick(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

/**
 * Keeps `inflight` round trips going (`send(i)` starts one on lane `i` and resolves at its reply), warms up, then
 * measures for `measureMs`: throughput and latency percentiles. Waits for the outstanding trips before returning.
 */
export async function runPhase(
  name: string,
  inflight: number,
  send: (lane: number) => Promise<void>,
  warmupMs: number,
  measureMs: number,
  probe: CounterProbe = noCounters,
): Promise<PhaseResult> {
  const latencies: number[] = [];
  let measuring = false;
  let stopped = false;
  let errors = 0;
  let count = 0;
  const lane = async (i: number): Promise<void> => {
    while (!stopped) {
      const t = performance.now();
      let ok = true;
      try {
        await send(i);
      } catch {
        ok = false;
      }
      if (!measuring) continue;
      if (!ok) errors++;
      else {
        count++;
        latencies.push(performance.now() - t);
      }
    }
  };
  const lanes = Array.from({ length: inflight }, (_, i) => lane(i));
  await sleep(warmupMs);
  const counts0 = await probe();
  measuring = true;
  const t0 = performance.now();
  const cpu0 = cpuSnapshot();
  await sleep(measureMs);
  measuring = false;
  const cpu1 = cpuSnapshot();
  const seconds = (performance.now() - t0) / 1000;
  const counts1 = await probe();
  stopped = true;
  await Promise.all(lanes);
  latencies.sort((a, b) => a - b);
  return {
    name,
    inflight,
    roundTrips: count,
    perSecond: count / seconds,
    p50Ms: pick(latencies, 0.5),
    p99Ms: pick(latencies, 0.99),
    p999Ms: pick(latencies, 0.999),
    errors,
    cpuMsPerTrip: cpuPerOp(cpu0, cpu1, count),
    countsPerTrip: perTrip(counts0, counts1, count),
  };
}

/**
 * Open loop: starts round trips at a fixed `ratePerS` whatever their latency (`send(i)` for the i-th), warms up,
 * then measures for `measureMs`. Latency counts from each trip's scheduled start, so a stall shows in the
 * percentiles instead of quietly lowering the offered rate. More than `maxOutstanding` trips in flight means the
 * rate cannot be served: further starts are counted as errors instead of piling up.
 */
export async function runPacedPhase(
  name: string,
  ratePerS: number,
  send: (i: number) => Promise<void>,
  warmupMs: number,
  measureMs: number,
  probe: CounterProbe = noCounters,
  maxOutstanding = 4096,
): Promise<PhaseResult> {
  const latencies: number[] = [];
  let errors = 0;
  let count = 0;
  let outstanding = 0;
  let peakOutstanding = 0;
  const pending = new Set<Promise<void>>();
  const start = performance.now();
  const measureFrom = start + warmupMs;
  const end = measureFrom + measureMs;
  let issued = 0;
  let cpu0: Record<string, number> | undefined;
  let counts0: Promise<Record<string, number>> | undefined;
  const issue = (scheduled: number): void => {
    const measured = scheduled >= measureFrom;
    if (outstanding >= maxOutstanding) {
      if (measured) errors++;
      return;
    }
    outstanding++;
    peakOutstanding = Math.max(peakOutstanding, outstanding);
    const p = send(issued).then(
      () => {
        if (measured) {
          count++;
          latencies.push(performance.now() - scheduled);
        }
      },
      () => {
        if (measured) errors++;
      },
    );
    const tracked = p.finally(() => {
      outstanding--;
      pending.delete(tracked);
    });
    pending.add(tracked);
  };
  for (;;) {
    const now = performance.now();
    if (cpu0 === undefined && now >= measureFrom) {
      cpu0 = cpuSnapshot();
      counts0 = probe();
    }
    if (now >= end) break;
    const due = Math.floor(((now - start) * ratePerS) / 1000);
    while (issued < due) issue(start + (++issued * 1000) / ratePerS);
    await sleep(1);
  }
  const cpu1 = cpuSnapshot();
  const counts1 = await probe();
  await Promise.all([...pending]);
  latencies.sort((a, b) => a - b);
  return {
    name,
    inflight: peakOutstanding,
    roundTrips: count,
    perSecond: count / (measureMs / 1000),
    p50Ms: pick(latencies, 0.5),
    p99Ms: pick(latencies, 0.99),
    p999Ms: pick(latencies, 0.999),
    errors,
    cpuMsPerTrip: cpuPerOp(cpu0 ?? cpu1, cpu1, count),
    countsPerTrip: perTrip((await counts0) ?? counts1, counts1, count),
  };
}
