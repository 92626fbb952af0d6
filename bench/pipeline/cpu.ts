import { readdirSync, readFileSync } from 'node:fs';

/** CPU time (user + system) a process has used, ms (Linux /proc; clock ticks of 10 ms). */
export function cpuMsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** The local service processes whose CPU a phase is charged with, by the name their process has. */
const SERVICES: Record<string, string> = { 'beam.smp': 'rabbitmq', mariadbd: 'mariadb', mysqld: 'mariadb' };

/** Child processes charged under their own label (e.g. server nodes run as separate processes). */
const tracked = new Map<string, Set<number>>();

/** Charges the CPU of process `pid` to `label` in later snapshots, until {@link untrackProcess}. */
export function trackProcess(label: string, pid: number): void {
  let pids = tracked.get(label);
  if (!pids) tracked.set(label, (pids = new Set()));
  pids.add(pid);
}

export function untrackProcess(pid: number): void {
  for (const pids of tracked.values()) pids.delete(pid);
}

/** The local service processes (`SERVICES`) running now, as [label, pid]. */
function serviceProcesses(): Array<[string, number]> {
  const out: Array<[string, number]> = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const service = SERVICES[readFileSync(`/proc/${entry}/comm`, 'utf8').trim()];
      if (service) out.push([service, Number(entry)]);
    } catch {
      // The process ended while we looked.
    }
  }
  return out;
}

/** Pids of the local service processes whose label (see `SERVICES`) is `service`, e.g. `'rabbitmq'`. */
export function servicePids(service: string): number[] {
  return serviceProcesses()
    .filter(([label]) => label === service)
    .map(([, pid]) => pid);
}

/**
 * CPU ms used so far: this process (`bench`: clients, and nodes and backend when they run in it), tracked child
 * processes by label, and each local service (Linux /proc).
 */
export function cpuSnapshot(): Record<string, number> {
  const own = process.cpuUsage();
  const out: Record<string, number> = { bench: (own.user + own.system) / 1000 };
  for (const [label, pids] of tracked) {
    for (const pid of pids) {
      try {
        out[label] = (out[label] ?? 0) + cpuMsOf(pid);
      } catch {
        // Exited.
      }
    }
  }
  for (const [service, pid] of serviceProcesses()) {
    try {
      out[service] = (out[service] ?? 0) + cpuMsOf(pid);
    } catch {
      // Exited since the scan.
    }
  }
  return out;
}

/** CPU ms per operation between two snapshots, per process kind. */
export function cpuPerOp(
  before: Record<string, number>,
  after: Record<string, number>,
  ops: number,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) out[k] = ops > 0 ? (v - (before[k] ?? 0)) / ops : NaN;
  return out;
}
