import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { WebSocket } from 'ws';
import type { NodeProcess } from '../../harness/NodeProcess.ts';
import { testAuth } from '../../harness/startTestCluster.ts';
import { cpuMsOf } from './cpu.ts';

/** Resident set size of a process, bytes (Linux /proc). */
export function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** A minimal raw session: one socket, HELLO done, frames collected per type. */
export interface RawSession {
  ws: WebSocket;
  sid: string;
  resolves: Set<string>;
  onResolve?: () => void;
}

/**
 * Opens a session (resuming `sid` if given). RESOLVEs are collected and, unless `ackResolves` is false, ACKed: an
 * un-ACKed reply stays in the session's outbox, to be delivered again after a resume.
 */
export async function openSession(
  url: string,
  user: string,
  sid?: string,
  ackResolves = true,
): Promise<RawSession> {
  const ws = new WebSocket(url, ['matssocket'], { perMessageDeflate: false });
  const session: RawSession = { ws, sid: sid ?? '', resolves: new Set() };
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('HELLO timed out')), 30_000);
    ws.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    ws.on('message', (data) => {
      for (const e of JSON.parse((data as Buffer).toString()) as Record<string, unknown>[]) {
        if (e.t === 'WELCOME') {
          session.sid = e.sid as string;
          clearTimeout(timer);
          resolve();
        } else if (e.t === 'RESOLVE') {
          if (ackResolves) ws.send(JSON.stringify([{ t: 'ACK', smid: e.smid }]));
          session.resolves.add(e.cmid as string);
          session.onResolve?.();
        }
      }
    });
    ws.once('open', () =>
      ws.send(
        JSON.stringify([
          { t: 'HELLO', clv: 'bench', an: 'Bench', av: '1', auth: testAuth(user), ...(sid ? { sid } : {}) },
        ]),
      ),
    );
  });
  return session;
}

/** Runs `fn` over `items` with at most `limit` at a time. */
export async function pooled<T, R>(
  items: readonly T[],
  limit: number,
  fn: (t: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

/** The soft limit on open files of this process (Linux /proc); node processes inherit it. */
export function openFilesLimit(): number {
  const m = /Max open files\s+(\d+|unlimited)/.exec(readFileSync('/proc/self/limits', 'utf8'));
  return !m || m[1] === 'unlimited' ? Infinity : Number(m[1]);
}

/** Fails early, naming the fix, when `sockets` sockets would not fit under the open-files limit. */
export function requireOpenFiles(sockets: number, flag: string): void {
  const limit = openFilesLimit();
  if (limit < sockets + 200) {
    throw new Error(
      `${flag} needs ${sockets} sockets in this process and in the node, but the open-files limit is ${limit}; ` +
        `raise it first, e.g. \`ulimit -n ${Math.max(65536, sockets * 2)}\` (as root also \`ulimit -Hn\`)`,
    );
  }
}

/** `--idle N`: N idle sessions held by one node process; its RSS before and after. */
export async function idleScale(node: NodeProcess, n: number): Promise<Record<string, number>> {
  requireOpenFiles(n, '--idle');
  const pid = node.child.pid!;
  const before = rssOf(pid);
  const t0 = performance.now();
  // Spread over users: the per-user cap (75) applies.
  const sessions = await pooled(
    Array.from({ length: n }, (_, i) => i),
    200,
    (i) => openSession(node.url, `idle${Math.floor(i / 50)}`),
  );
  const openMs = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 2000));
  const after = rssOf(pid);
  for (const s of sessions) s.ws.terminate();
  return {
    idle_sessions: n,
    idle_open_ms: Math.round(openMs),
    idle_rss_before_mib: before / 2 ** 20,
    idle_rss_after_mib: after / 2 ** 20,
    idle_bytes_per_session: (after - before) / n,
  };
}

/**
 * `--storm N`: N sessions on node 1 each have a reply pending when node 1 is killed (-9); they all resume on node 2;
 * time from the kill until every reply is delivered.
 *
 * With `backendSleepMs` 0 (the default) the pending reply is one node 1 already wrote to the socket but the client
 * did not ACK, so it waits in the outbox: this measures the resume path (HELLO, unmark, poke, forward) alone. With
 * `backendSleepMs` > 0 each backend call sleeps that long, so replies are still being produced at the kill; but the
 * backend endpoint then runs only `concurrency` (default min(10, 2 × CPUs)) calls at a time per node, so the
 * figure is dominated by N × sleep / concurrency (300 × 1.5 s / 4 ≈ 112 s on 2 CPUs), not by the server.
 */
export async function storm(
  n1: NodeProcess,
  n2: NodeProcess,
  n: number,
  backendSleepMs = 0,
  sqlStatements?: () => Promise<number>,
): Promise<Record<string, number>> {
  requireOpenFiles(n, '--storm');
  const pending = backendSleepMs === 0;
  const userOf = (i: number): string => `storm${Math.floor(i / 50)}`;
  const sessions = await pooled(
    Array.from({ length: n }, (_, i) => i),
    200,
    (i) => openSession(n1.url, userOf(i), undefined, !pending),
  );
  // Each sends its request and waits for the ACK (the request is in the inbox and on its way to the backend), or,
  // in the pending mode, for the (un-ACKed) RESOLVE.
  await pooled(sessions, 500, async (s) => {
    const acked = new Promise<void>((resolve) => {
      if (pending) s.onResolve = resolve;
      else {
        s.ws.on('message', (data) => {
          if ((data as Buffer).toString().includes('"ACK"')) resolve();
        });
      }
    });
    s.ws.send(
      JSON.stringify([
        {
          t: 'REQUEST',
          eid: 'Fault.echo',
          tid: 'storm',
          cmid: 1,
          msg: { id: s.sid, ...(pending ? {} : { sleepMs: backendSleepMs }) },
        },
      ]),
    );
    await acked;
  });
  const sql0 = await sqlStatements?.();
  const t0 = performance.now();
  const cpu0 = cpuMsOf(n2.child.pid!);
  const benchCpu0 = process.cpuUsage();
  n1.kill('SIGKILL');
  await n1.exited;
  for (const s of sessions) s.ws.terminate();
  let delivered = 0;
  let welcomedMs = 0;
  const all = new Promise<void>((resolve) => {
    const check = (): void => {
      if (++delivered === n) resolve();
    };
    void pooled(
      sessions.map((s, i) => ({ s, i })),
      200,
      async ({ s, i }) => {
        const again = await openSession(n2.url, userOf(i), s.sid);
        welcomedMs = performance.now() - t0;
        if (again.resolves.size > 0) check();
        else again.onResolve = check;
        s.ws = again.ws;
      },
    );
  });
  await all;
  const ms = performance.now() - t0;
  const nodeCpuMs = cpuMsOf(n2.child.pid!) - cpu0;
  const sql = sql0 === undefined ? undefined : (await sqlStatements!()) - sql0;
  const benchCpu = process.cpuUsage(benchCpu0);
  for (const s of sessions) s.ws.terminate();
  return {
    storm_sessions: n,
    storm_backend_sleep_ms: backendSleepMs,
    storm_last_welcome_ms: Math.round(welcomedMs),
    storm_delivered_ms: Math.round(ms),
    storm_node_cpu_ms: nodeCpuMs,
    storm_client_cpu_ms: Math.round((benchCpu.user + benchCpu.system) / 1000),
    ...(sql === undefined ? {} : { storm_sql_statements_per_session: sql / n }),
  };
}
