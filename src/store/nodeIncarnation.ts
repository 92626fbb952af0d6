import { hostname } from 'node:os';
import { randomId } from '../util/ids.ts';

/**
 * One boot of one node process, as the `mats_socket_node` row records it: `<host>/<pid>/<random>`. The host and
 * pid let a node restarted right after a crash (kill -9, OOM; systemd or a supervisor restarts it within a second)
 * see that the process holding its name is gone, instead of being refused for `nodeDeadAfterMs`.
 */
export function newIncarnation(): string {
  return `${hostname().slice(0, 40)}/${process.pid}/${randomId(12)}`;
}

/**
 * True when `incarnation` was a process on this host that no longer runs (so its name is free although its
 * liveliness is recent). False when it runs, is on another host, or cannot be told.
 */
export function isDeadLocalIncarnation(incarnation: string): boolean {
  const [host, pidText] = incarnation.split('/');
  if (host !== hostname().slice(0, 40) || pidText === undefined) return false;
  const pid = Number(pidText);
  if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0); // signal 0: only asks whether the process exists
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
