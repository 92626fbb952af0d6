import type { PhaseResult } from './Driver.ts';

/** A system's phases in the headline comparison, and which processes' CPU counts as its own. */
export interface SystemResult {
  /** Short key used in the JSON, e.g. `mariadb`. */
  key: string;
  closed: PhaseResult;
  halfMax?: PhaseResult;
  /** The open loop at another system's half-max rate (the peer at MatsSocket RabbitMQ+MariaDB's). */
  atRate?: PhaseResult;
  /** Labels of `cpuMsPerTrip` charged to this system; the bench process (`bench`, the clients) always is. */
  cpuLabels: readonly string[];
}

/** CPU ms per round trip of the processes charged to `s`: `bench` (the clients) first. */
export function chargedCpu(s: SystemResult, r: PhaseResult = s.closed): Record<string, number> {
  const out: Record<string, number> = {};
  for (const label of ['bench', ...s.cpuLabels]) out[label] = r.cpuMsPerTrip[label] ?? 0;
  return out;
}

export function cpuTotal(cpu: Record<string, number>): number {
  return Object.values(cpu).reduce((a, v) => a + v, 0);
}

/** `bench 1.23 + rabbitmq 0.45 + mariadb 0.67 = 2.35`. */
export function cpuText(cpu: Record<string, number>): string {
  return `${Object.entries(cpu)
    .map(([k, v]) => `${k} ${v.toFixed(2)}`)
    .join(' + ')} = ${cpuTotal(cpu).toFixed(2)}`;
}

const fmt = (v: number | undefined, digits: number): string =>
  v === undefined || Number.isNaN(v) ? '-' : v.toFixed(digits);

/** One progress line per phase, as it ends; `cpu` defaults to every process the phase was charged with. */
export function reportPhase(r: PhaseResult, cpu: Record<string, number> = r.cpuMsPerTrip): void {
  const counts = Object.entries(r.countsPerTrip).map(([k, v]) => `${k} ${v.toFixed(2)}`);
  console.log(
    `${r.name.padEnd(39)} in-flight ${String(r.inflight).padStart(4)}: ${r.perSecond.toFixed(0).padStart(6)}/s  ` +
      `p50 ${r.p50Ms.toFixed(1)} ms  p99 ${r.p99Ms.toFixed(1)} ms  p999 ${r.p999Ms.toFixed(1)} ms` +
      (r.errors > 0 ? `  errors ${r.errors}` : '') +
      `  CPU ms/trip ${cpuText(cpu)}` +
      (counts.length > 0 ? `  per trip: ${counts.join(', ')}` : ''),
  );
}

/**
 * The headline table: per system round trips/s, the ratio to the peer's, latency, CPU per round trip (charged
 * processes), and the counted work per round trip; then the open-loop rows. SQL/trip is the server's count where
 * there is a server (MariaDB `Questions`), else the node's (SQLite runs in the node: a statement is a driver call).
 */
export function printTable(systems: readonly SystemResult[], peer: SystemResult | undefined): void {
  const head =
    'system                                  trips/s  vs peer  p50 ms  p99 ms  CPU ms/trip  SQL/trip  DB rt/trip  broker msgs/trip';
  console.log(`\n${head}`);
  for (const s of systems) {
    const r = s.closed;
    const c = r.countsPerTrip;
    console.log(
      `${r.name.padEnd(38)}  ${r.perSecond.toFixed(0).padStart(7)}  ` +
        `${(peer ? fmt(r.perSecond / peer.closed.perSecond, 2) : '-').padStart(7)}  ` +
        `${fmt(r.p50Ms, 1).padStart(6)}  ${fmt(r.p99Ms, 1).padStart(6)}  ${fmt(cpuTotal(chargedCpu(s)), 2).padStart(11)}  ` +
        `${fmt(c.sql_server ?? c.db_roundtrips, 2).padStart(8)}  ${fmt(c.db_roundtrips, 2).padStart(10)}  ${fmt(c.broker_msgs, 2).padStart(16)}`,
    );
  }
  console.log('\nCPU ms per round trip by process (closed loop):');
  for (const s of systems) console.log(`  ${s.closed.name.padEnd(38)} ${cpuText(chargedCpu(s))}`);
  const paced = systems.filter((s) => s.halfMax);
  if (paced.length > 0) {
    console.log(
      "\nopen loop at half the closed loop's throughput (latency from each trip's scheduled start):",
    );
    for (const s of paced) {
      const h = s.halfMax!;
      console.log(
        `  ${s.closed.name.padEnd(38)} offered ${(s.closed.perSecond / 2).toFixed(0).padStart(6)}/s: ` +
          `p50 ${fmt(h.p50Ms, 1)} ms  p99 ${fmt(h.p99Ms, 1)} ms  p999 ${fmt(h.p999Ms, 1)} ms` +
          (h.errors > 0 ? `  errors ${h.errors}` : '') +
          `  CPU ms/trip ${fmt(cpuTotal(chargedCpu(s, h)), 2)}`,
      );
    }
  }
  for (const s of systems.filter((x) => x.atRate)) {
    const a = s.atRate!;
    console.log(
      `\n${s.closed.name} at the same offered rate as MatsSocket RabbitMQ+MariaDB's half max, ` +
        `${a.perSecond.toFixed(0)}/s: p50 ${fmt(a.p50Ms, 1)} ms  p99 ${fmt(a.p99Ms, 1)} ms` +
        (a.errors > 0 ? `  errors ${a.errors}` : '') +
        `  CPU ms/trip ${cpuText(chargedCpu(s, a))}`,
    );
  }
}
