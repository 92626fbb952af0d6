/**
 * `npm run bench`. The headline is the shape users have: N sessions (`--sessions 100`), one user each, ONE request
 * in flight each, measured end to end (our client → WebSocket → inbox → broker → Mats endpoint `Fault.echo` →
 * outbox → poke → WebSocket → ACK/ACK2) on
 * - MatsSocket on RabbitMQ + MariaDB, two nodes as child processes;
 * - MatsSocket on the embedded default (in-process broker + SQLite file), one node process;
 * - the peer a Node user would build instead: a Socket.IO server process forwarding over RabbitMQ to a backend
 *   process (`bench/peer/`), socket.io-client clients, WebSocket transport only;
 * - the raw amqplib request/reply loop with N in flight (the ceiling);
 * each closed loop, and the MatsSocket and peer systems also open loop at half their closed-loop throughput. Per
 * round trip: CPU ms of every process charged, SQL statements (MariaDB `Questions`), database round trips and
 * broker messages counted in the nodes. Prints a table with ratios against the peer, writes
 * `bench/results/latest.json` and `latest.svg`; the last line is the summary JSON.
 *
 * Flags: `--sessions 100`, `--measure-ms 5000`, `--warmup-ms 1000`, `--shapes sessions,levels` (default
 * `sessions`); `--levels 16,64,256` runs the older shape too (`--clients 16` sessions sharing that many round
 * trips in flight; `--node-processes` puts its nodes in child processes); `--node-cpu-prof DIR` profiles every
 * node process. Scale measurements: `--idle N`, `--storm N` (`--storm-sleep-ms`), `--backlog N`
 * (`--backlog-sessions 100`), `--scale-only`; see docs/benchmarks.md. Needs RabbitMQ and MariaDB (RABBITMQ_URL,
 * MARIADB_URL).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { runId } from '../harness/runState.ts';
import { serviceUrls } from '../harness/services.ts';
import { socketIoPeerPhases, PEER_CPU_LABELS } from './peer/socketIoPeer.ts';
import type { PhaseResult } from './pipeline/Driver.ts';
import { levelsShape, type LevelsResult } from './pipeline/levels.ts';
import { startEmbeddedNode, startRabbitMariaNodes, type NodeSystem } from './pipeline/nodeSystems.ts';
import { rawAmqpPhase } from './pipeline/rawAmqp.ts';
import { chargedCpu, cpuTotal, printTable, reportPhase, type SystemResult } from './pipeline/report.ts';
import { scaleRun } from './pipeline/scaleRun.ts';
import { sessionsPhases } from './pipeline/sessions.ts';
import { chartSvg, type ChartRow } from './pipeline/svgChart.ts';

const { values: args } = parseArgs({
  options: {
    sessions: { type: 'string', default: '100' },
    shapes: { type: 'string' },
    levels: { type: 'string' },
    clients: { type: 'string', default: '16' },
    'measure-ms': { type: 'string', default: '5000' },
    'warmup-ms': { type: 'string', default: '1000' },
    idle: { type: 'string' },
    storm: { type: 'string' },
    'storm-sleep-ms': { type: 'string', default: '0' },
    backlog: { type: 'string' },
    'backlog-sessions': { type: 'string', default: '100' },
    'scale-only': { type: 'boolean', default: false },
    'node-processes': { type: 'boolean', default: false },
    'node-cpu-prof': { type: 'string' },
  },
});
const sessions = Number(args.sessions);
const measureMs = Number(args['measure-ms']);
const warmupMs = Number(args['warmup-ms']);
const shapes = new Set(
  (args.shapes ?? (args.levels !== undefined ? 'sessions,levels' : 'sessions')).split(','),
);
for (const s of shapes) if (s !== 'sessions' && s !== 'levels') throw new Error(`unknown shape '${s}'`);
const levels = (args.levels ?? '16,64,256').split(',').map(Number);
const prof = args['node-cpu-prof'];
// The nodes' backend stage takes up to `sessions` requests at once, as the peer's backend (its prefetch): with the
// Mats layer's default (min(10, 2 × CPUs) = 4 here) the requests would queue in the broker ahead of a stage
// that only waits for confirms, and the comparison would measure that setting rather than the pipeline.
const nodeOptions = {
  execArgv: prof !== undefined ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : [],
  backendConcurrency: sessions,
};
const prefix = `bench.${runId}.`;

const TARGETS = {
  ratio_vs_raw_amqp: 0.5,
  p99_ms_at_half_max: 50,
  idle_rss_mib_for_20000: 1024,
  storm_5000_ms: 10_000,
};

/** One MatsSocket system's sessions phases, the system stopped afterwards. */
async function matsSocketSystem(
  key: string,
  name: string,
  start: () => Promise<NodeSystem>,
): Promise<SystemResult> {
  const system = await start();
  try {
    const run = { name, sessions, warmupMs, measureMs, halfMax: true, probe: system.probe };
    const { closed, halfMax } = await sessionsPhases(system.urls, run);
    const result: SystemResult = {
      key,
      closed,
      cpuLabels: system.cpuLabels,
      ...(halfMax ? { halfMax } : {}),
    };
    report(result);
    return result;
  } finally {
    await system.stop();
  }
}

function report(s: SystemResult): void {
  reportPhase(s.closed, chargedCpu(s));
  if (s.halfMax) reportPhase(s.halfMax, chargedCpu(s, s.halfMax));
  if (s.atRate) reportPhase(s.atRate, chargedCpu(s, s.atRate));
}

/** The headline: the two MatsSocket systems, the peer and the raw ceiling, each with `sessions` in flight. */
async function sessionsShape(): Promise<SystemResult[]> {
  const mariadb = await matsSocketSystem('mariadb', 'MatsSocket RabbitMQ+MariaDB (2 nodes)', () =>
    startRabbitMariaNodes(nodeOptions),
  );
  const embedded = await matsSocketSystem('embedded', 'MatsSocket embedded (SQLite, 1 node)', () =>
    startEmbeddedNode(nodeOptions),
  );
  const peerPhases = await socketIoPeerPhases(serviceUrls.rabbitmq, prefix, {
    name: 'Socket.IO + RabbitMQ (peer)',
    sessions,
    warmupMs,
    measureMs,
    halfMax: true,
    // The peer also at our half-max rate: what the same load costs it, process by process.
    ...(mariadb.halfMax ? { alsoAtRatePerS: mariadb.halfMax.perSecond } : {}),
  });
  const peer: SystemResult = { key: 'peer', ...peerPhases, cpuLabels: PEER_CPU_LABELS };
  report(peer);
  const rawClosed = await rawAmqpPhase(serviceUrls.rabbitmq, prefix, sessions, warmupMs, measureMs);
  const raw: SystemResult = { key: 'raw_amqp', closed: rawClosed, cpuLabels: ['rabbitmq'] };
  report(raw);
  return [mariadb, embedded, peer, raw];
}

/** `summary.<name>_<key>` for each system, e.g. `p99_ms_peer`. */
function perSystem(systems: readonly SystemResult[], name: string, f: (s: SystemResult) => unknown) {
  return Object.fromEntries(systems.map((s) => [`${name}_${s.key}`, f(s)]));
}

function sessionsSummary(systems: readonly SystemResult[]): Record<string, unknown> {
  const by = (key: string): SystemResult => systems.find((s) => s.key === key)!;
  const [mariadb, embedded, peer, raw] = [by('mariadb'), by('embedded'), by('peer'), by('raw_amqp')];
  return {
    sessions,
    sessions_per_s_mariadb: mariadb.closed.perSecond,
    sessions_per_s_embedded: embedded.closed.perSecond,
    peer_per_s: peer.closed.perSecond,
    raw_amqp_per_s: raw.closed.perSecond,
    ratio_vs_peer: mariadb.closed.perSecond / peer.closed.perSecond,
    ratio_vs_peer_embedded: embedded.closed.perSecond / peer.closed.perSecond,
    ratio_vs_raw_amqp: mariadb.closed.perSecond / raw.closed.perSecond,
    // Open loop at half of each system's closed-loop throughput; latency from each trip's scheduled start.
    p99_ms_at_half_max: mariadb.halfMax?.p99Ms,
    p50_ms_at_half_max: mariadb.halfMax?.p50Ms,
    half_max_per_s: mariadb.halfMax?.perSecond,
    half_max_errors: mariadb.halfMax?.errors,
    p99_ms_at_half_max_embedded: embedded.halfMax?.p99Ms,
    p99_ms_at_half_max_peer: peer.halfMax?.p99Ms,
    // The peer at the RabbitMQ + MariaDB row's half-max rate: the same offered load.
    p99_ms_peer_at_mariadb_half_rate: peer.atRate?.p99Ms,
    cpu_ms_per_trip_peer_at_mariadb_half_rate: peer.atRate ? chargedCpu(peer, peer.atRate) : undefined,
    cpu_ms_per_trip_mariadb_at_half_max: mariadb.halfMax ? chargedCpu(mariadb, mariadb.halfMax) : undefined,
    ...perSystem(systems, 'p50_ms', (s) => s.closed.p50Ms),
    ...perSystem(systems, 'p99_ms', (s) => s.closed.p99Ms),
    ...perSystem(systems, 'errors', (s) => s.closed.errors),
    // Every charged process's CPU per round trip (the bench process holds the clients); on this machine's 2 CPUs
    // 2000 / total bounds the throughput when nothing else runs.
    cpu_ms_per_trip_total: cpuTotal(chargedCpu(mariadb)),
    ...perSystem(systems, 'cpu_ms_per_trip_total', (s) => cpuTotal(chargedCpu(s))),
    cpu_ms_per_trip: Object.fromEntries(systems.map((s) => [s.key, chargedCpu(s)])),
    sql_per_trip_mariadb: mariadb.closed.countsPerTrip.sql_server,
    sql_per_trip_embedded: embedded.closed.countsPerTrip.db_roundtrips,
    db_roundtrips_per_trip_mariadb: mariadb.closed.countsPerTrip.db_roundtrips,
    db_roundtrips_per_trip_embedded: embedded.closed.countsPerTrip.db_roundtrips,
    broker_msgs_per_trip_mariadb: mariadb.closed.countsPerTrip.broker_msgs,
    broker_msgs_per_trip_embedded: embedded.closed.countsPerTrip.broker_msgs,
    broker_msgs_per_trip_peer: peer.closed.countsPerTrip.broker_msgs,
  };
}

function levelsSummary(l: LevelsResult): Record<string, unknown> {
  const best = l.pipeline.reduce((a, b) => (b.perSecond > a.perSecond ? b : a));
  const rawAtBest = l.rawAmqp.find((r) => r.inflight === best.inflight)!;
  return {
    levels_ratio_vs_raw_amqp: best.perSecond / rawAtBest.perSecond,
    levels_max_per_s: best.perSecond,
    levels_max_inflight: best.inflight,
    levels_raw_amqp_per_s_same_inflight: rawAtBest.perSecond,
    levels_raw_ws_per_s: l.rawWs.perSecond,
    levels_p99_ms_at_half_max: l.halfMax.p99Ms,
  };
}

const scaleOptions = {
  ...(args.idle !== undefined ? { idle: Number(args.idle) } : {}),
  ...(args.storm !== undefined ? { storm: Number(args.storm) } : {}),
  stormSleepMs: Number(args['storm-sleep-ms']),
  ...(args.backlog !== undefined ? { backlog: Number(args.backlog) } : {}),
  backlogSessions: Number(args['backlog-sessions']),
};
const started = Date.now();
const machine = (): Record<string, unknown> => ({ load_avg_1m: loadavg()[0], cpus: cpus().length });

/** The levels shape's bars: the pipeline and the raw loop per level (open loop beside the best), the ws echo. */
function levelRows(l: LevelsResult): ChartRow[] {
  const best = Math.max(...l.pipeline.map((p) => p.perSecond));
  return [
    ...l.pipeline.map((p) => ({
      label: `pipeline, ${p.inflight} in flight`,
      perSecond: p.perSecond,
      p99Ms: p.p99Ms,
      ...(p.perSecond === best ? { p99HalfMaxMs: l.halfMax.p99Ms } : {}),
    })),
    ...l.rawAmqp.map((r) => ({
      label: `raw amqplib, ${r.inflight} in flight`,
      perSecond: r.perSecond,
      p99Ms: r.p99Ms,
    })),
    {
      label: `raw ws echo, ${l.rawWs.inflight} in flight`,
      perSecond: l.rawWs.perSecond,
      p99Ms: l.rawWs.p99Ms,
    },
  ];
}

/** The shapes asked for, the table, the result files and the summary line. */
async function fullRun(): Promise<void> {
  console.log(
    `pipeline bench: shapes ${[...shapes].join(',')}` +
      (shapes.has('sessions') ? `, ${sessions} sessions` : '') +
      (shapes.has('levels') ? `, levels ${levels.join(',')} over ${args.clients} clients` : '') +
      `, ${cpus().length} CPUs, ` +
      `load ${loadavg()[0]!.toFixed(1)}, measure ${measureMs} ms after ${warmupMs} ms warm-up`,
  );
  const systems = shapes.has('sessions') ? await sessionsShape() : [];
  const levelRun = shapes.has('levels')
    ? await levelsShape({
        levels,
        clients: Number(args.clients),
        warmupMs,
        measureMs,
        nodeProcesses: args['node-processes'],
        node: nodeOptions,
        prefix,
      })
    : undefined;
  const scaleFigures = await scaleRun(scaleOptions);
  if (systems.length > 0) {
    printTable(
      systems,
      systems.find((s) => s.key === 'peer'),
    );
  }
  const summary = {
    ...(systems.length > 0 ? sessionsSummary(systems) : {}),
    ...(levelRun ? levelsSummary(levelRun) : {}),
    ...scaleFigures,
    targets: TARGETS,
    ...machine(),
    seconds: (Date.now() - started) / 1000,
  };
  const results = new URL('./results/', import.meta.url);
  mkdirSync(results, { recursive: true });
  const phases = (s: SystemResult): PhaseResult[] => [
    s.closed,
    ...(s.halfMax ? [s.halfMax] : []),
    ...(s.atRate ? [s.atRate] : []),
  ];
  writeFileSync(
    new URL('latest.json', results),
    JSON.stringify(
      { summary, sessions: Object.fromEntries(systems.map((s) => [s.key, phases(s)])), levels: levelRun },
      null,
      2,
    ),
  );
  const rows: ChartRow[] = systems.map((s) => ({
    label: s.closed.name,
    perSecond: s.closed.perSecond,
    p99Ms: s.closed.p99Ms,
    ...(s.halfMax ? { p99HalfMaxMs: s.halfMax.p99Ms } : {}),
  }));
  if (levelRun) rows.push(...levelRows(levelRun));
  const title =
    systems.length > 0
      ? `${sessions} sessions, one request in flight each (${cpus().length} CPUs shared by all processes)`
      : `${args.clients} sessions sharing ${levels.join(', ')} requests in flight (${cpus().length} CPUs)`;
  writeFileSync(new URL('latest.svg', results), chartSvg(title, rows));
  console.log(JSON.stringify(summary));
}

if (args['scale-only']) {
  const scaleFigures = await scaleRun(scaleOptions);
  console.log(JSON.stringify({ ...scaleFigures, targets: TARGETS, ...machine() }));
} else {
  await fullRun();
}
