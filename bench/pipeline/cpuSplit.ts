import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { servicePids } from './cpu.ts';

/** This process and the local RabbitMQ pinned to disjoint CPUs; {@link CpuSplit.restore} undoes it. */
export interface CpuSplit {
  /** CPU list of this process, e.g. `0`. */
  readonly client: string;
  /** CPU list of the broker, e.g. `1`. */
  readonly broker: string;
  /** Pins both (again); idempotent. */
  apply(): void;
  /** Gives both their original affinity back; idempotent. */
  restore(): void;
}

/**
 * Why a bench pins: on a small machine the local broker and the client share the CPUs, so every µs the client
 * spends is taken from the broker, and a client that costs more CPU per message slows the broker too. In a
 * deployment the broker has CPUs of its own. Pinning the client to the first half of the CPUs and the broker to
 * the second half measures the client the way it runs there: its own CPU cost limits it, not the broker's.
 *
 * Returns the reason instead when it cannot: fewer than 2 CPUs, no local RabbitMQ process (e.g. a remote
 * broker), no `taskset` (util-linux), or no permission to change the broker's affinity.
 */
export function splitCpus(): CpuSplit | { unavailable: string } {
  const n = cpus().length;
  if (n < 2) return { unavailable: `${n} CPU` };
  const brokerPids = servicePids('rabbitmq');
  if (brokerPids.length === 0) return { unavailable: 'no local RabbitMQ process' };
  const half = Math.floor(n / 2);
  const client = half === 1 ? '0' : `0-${half - 1}`;
  const broker = n - half === 1 ? String(half) : `${half}-${n - 1}`;
  const pids = [process.pid, ...brokerPids];
  let original: Map<number, string>;
  try {
    original = new Map(pids.map((pid) => [pid, affinityMask(pid)]));
  } catch (error) {
    return { unavailable: `taskset: ${(error as Error).message.split('\n')[0]}` };
  }
  const split: CpuSplit = {
    client,
    broker,
    apply() {
      pin(process.pid, client);
      for (const pid of brokerPids) pin(pid, broker);
    },
    restore() {
      for (const [pid, mask] of original) {
        try {
          taskset(['-a', '-p', mask, String(pid)]);
        } catch {
          // The process is gone; nothing to restore.
        }
      }
    },
  };
  try {
    split.apply();
  } catch (error) {
    split.restore();
    return { unavailable: `taskset: ${(error as Error).message.split('\n')[0]}` };
  }
  return split;
}

/** The hex affinity mask of `pid`'s main thread (`taskset -p` prints "pid N's current affinity mask: 3"). */
function affinityMask(pid: number): string {
  const out = taskset(['-p', String(pid)]);
  const mask = /mask:\s*([0-9a-f,]+)/i.exec(out)?.[1];
  if (!mask) throw new Error(`cannot read the affinity of ${pid}: ${out.trim()}`);
  return mask.replace(/,/g, '');
}

/** Pins every thread of `pid` (`-a`: the broker's schedulers, Node's libuv and GC threads) to `cpuList`. */
function pin(pid: number, cpuList: string): void {
  taskset(['-a', '-c', '-p', cpuList, String(pid)]);
}

function taskset(args: string[]): string {
  return execFileSync('taskset', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
