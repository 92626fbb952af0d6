import { performance } from 'node:perf_hooks';
import { cpuPerOp, cpuSnapshot } from './cpu.ts';

/** The figures of one measured phase. */
export interface PhaseResult {
  name: string;
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
}

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
  measuring = true;
  const t0 = performance.now();
  const cpu0 = cpuSnapshot();
  await sleep(measureMs);
  measuring = false;
  const cpu1 = cpuSnapshot();
  const seconds = (performance.now() - t0) / 1000;
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
  };
}
