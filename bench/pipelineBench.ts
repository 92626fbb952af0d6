/**
 * `npm run bench`: the full MatsSocket pipeline — our client over WebSocket → inbox → RabbitMQ → Mats endpoint →
 * outbox (MariaDB) → poke → WebSocket → ACK/ACK2 — with two server nodes (in this process) and many clients,
 * measuring reliable request/reply round trips per second and p50/p99/p999 at several in-flight levels, then the
 * latency when half the best level's throughput is offered at a fixed rate (open loop); in the same
 * run the ceilings: a raw amqplib request/reply loop with the same in-flight count (confirm channel, persistent,
 * manual acks, noDelay, quorum queues) and a raw `ws` JSON echo. Prints a table, writes `bench/results/latest.json`
 * and `bench/results/latest.svg`; the last line is JSON with `ratio_vs_raw_amqp`.
 *
 * Flags: `--levels 16,64,256` (in-flight levels), `--clients 16`, `--measure-ms 5000`, `--warmup-ms 1000`;
 * scale measurements (each runs node processes of test/faults): `--idle N` (idle sessions held by one node, its
 * RSS), `--storm N` (N sessions with pending replies move to the other node when theirs is killed: time until every
 * reply is delivered; `--storm-sleep-ms` makes the backend sleep so replies are produced during the move, see
 * `storm()`), `--backlog N` (an outbox backlog of N messages over `--backlog-sessions 100` sessions, written while
 * their node is down, drained after its restart: see `backlog()`); `--scale-only` skips the throughput phases.
 * Needs RabbitMQ and MariaDB (RABBITMQ_URL, MARIADB_URL).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import type { Knex } from 'knex';
import { WebSocket } from 'ws';
import { MatsSocketClient } from '../src/client/MatsSocketClient.ts';
import type { EchoReply } from '../harness/faultEndpoints.ts';
import { NodeProcess } from '../harness/NodeProcess.ts';
import { createTestDatabase, type TestDatabase } from '../harness/databases.ts';
import { serviceUrls } from '../harness/services.ts';
import { testAuth } from '../harness/startTestCluster.ts';
import { createTestBroker } from '../harness/transports.ts';
import { runId } from '../harness/runState.ts';
import { runPacedPhase, runPhase, type PhaseResult } from './pipeline/Driver.ts';
import { rawAmqpPhase } from './pipeline/rawAmqp.ts';
import { rawWsPhase } from './pipeline/rawWs.ts';
import { backlog } from './pipeline/backlog.ts';
import { startBenchCluster } from './pipeline/benchCluster.ts';
import { trackProcess, untrackProcess } from './pipeline/cpu.ts';
import { idleScale, storm } from './pipeline/scale.ts';
import { chartSvg } from './pipeline/svgChart.ts';

const { values: args } = parseArgs({
  options: {
    levels: { type: 'string', default: '16,64,256' },
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
const levels = args.levels.split(',').map(Number);
const clientCount = Number(args.clients);
const measureMs = Number(args['measure-ms']);
const warmupMs = Number(args['warmup-ms']);

const TARGETS = {
  ratio_vs_raw_amqp: 0.5,
  p99_ms_at_half_max: 50,
  idle_rss_mib_for_20000: 1024,
  storm_5000_ms: 10_000,
};

/** The closed-loop levels, and the open-loop run at half the best level's throughput. */
async function pipelinePhases(): Promise<{ levels: PhaseResult[]; halfMax: PhaseResult }> {
  const db = await createTestDatabase('mysql');
  const { urls, stop } = args['node-processes'] ? await nodeProcesses(db.url) : await inProcessNodes(db);
  const clients = Array.from({ length: clientCount }, (_, i) => {
    const c = new MatsSocketClient({
      appName: 'Bench',
      appVersion: '1.0.0',
      urls: i % 2 === 0 ? urls : [...urls].reverse(),
      webSocket: WebSocket,
      shuffleUrls: false,
      initialPingDelayMinMs: 600_000,
      initialPingDelayMaxMs: 600_000,
    });
    c.setCurrentAuthorization(testAuth(`bench${i}`));
    return c;
  });
  let seq = 0;
  const results: PhaseResult[] = [];
  const roundTrip = async (lane: number): Promise<void> => {
    const id = `b${++seq}`;
    const reply = await clients[lane % clients.length]!.request<EchoReply>('Fault.echo', id, { id });
    if (reply.data.id !== id) throw new Error(`reply for ${reply.data.id} to ${id}`);
  };
  try {
    for (const inflight of levels) {
      results.push(await runPhase('pipeline', inflight, roundTrip, warmupMs, measureMs));
      report(results.at(-1)!);
    }
    // The latency target is stated at half the maximum throughput: offered at that rate (open loop), not read
    // off the closed-loop level that happens to come nearest.
    const best = Math.max(...results.map((r) => r.perSecond));
    const halfMax = await runPacedPhase('paced half', best / 2, roundTrip, warmupMs, measureMs);
    report(halfMax);
    return { levels: results, halfMax };
  } finally {
    await Promise.allSettled(clients.map((c) => c.close('bench over')));
    await stop();
    await db.drop();
  }
}

interface RunningNodes {
  urls: string[];
  stop: () => Promise<void>;
}

/** Two nodes (and the backend endpoint on each) in this process, with the factory's production sweeper timings. */
async function inProcessNodes(db: TestDatabase): Promise<RunningNodes> {
  const cluster = await startBenchCluster(db);
  return { urls: cluster.nodes.map((n) => n.url), stop: () => cluster.stop() };
}

/** Two nodes as child processes (as deployed: one event loop each), their CPU charged as `nodes`. */
async function nodeProcesses(dbUrl: string): Promise<RunningNodes> {
  const broker = await createTestBroker('rabbitmq');
  const nodes: NodeProcess[] = [];
  const stop = async (): Promise<void> => {
    for (const n of nodes) if (n.child.pid !== undefined) untrackProcess(n.child.pid);
    await Promise.all(nodes.map((n) => n.stop()));
    await broker.close();
  };
  try {
    for (const i of [1, 2]) {
      const node = await NodeProcess.start(
        {
          nodeName: `pipe${i}_${runId}`,
          instanceName: `P${runId}`,
          amqpUrl: serviceUrls.rabbitmq,
          dbUrl,
          queuePrefix: broker.prefix,
          timings: 'production',
        },
        30_000,
        args['node-cpu-prof'] !== undefined ? ['--cpu-prof', `--cpu-prof-dir=${args['node-cpu-prof']}`] : [],
      );
      nodes.push(node);
      trackProcess('nodes', node.child.pid!);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { urls: nodes.map((n) => n.url), stop };
}

function report(r: PhaseResult): void {
  console.log(
    `${r.name.padEnd(12)} in-flight ${String(r.inflight).padStart(4)}: ${r.perSecond.toFixed(0).padStart(6)}/s  ` +
      `p50 ${r.p50Ms.toFixed(1)} ms  p99 ${r.p99Ms.toFixed(1)} ms  p999 ${r.p999Ms.toFixed(1)} ms` +
      (r.errors > 0 ? `  errors ${r.errors}` : '') +
      `  CPU ms/trip ${cpuText(r)}`,
  );
}

/** `bench 1.23 + rabbitmq 0.45 + mariadb 0.67 = 2.35`. */
function cpuText(r: PhaseResult): string {
  const parts = Object.entries(r.cpuMsPerTrip);
  const sum = parts.reduce((a, [, v]) => a + v, 0);
  return `${parts.map(([k, v]) => `${k} ${v.toFixed(2)}`).join(' + ')} = ${sum.toFixed(2)}`;
}

/** Statements the database server has executed so far (MariaDB's global `Questions`, every client's). */
async function serverStatements(knex: Knex): Promise<number> {
  const [rows] = (await knex.raw("SHOW GLOBAL STATUS LIKE 'Questions'")) as [{ Value: string }[]];
  return Number(rows[0]!.Value);
}

async function scale(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  if (args.idle === undefined && args.storm === undefined && args.backlog === undefined) return out;
  const db = await createTestDatabase('mysql');
  const broker = await createTestBroker('rabbitmq');
  const nodes: NodeProcess[] = [];
  try {
    for (const i of [1, 2]) {
      nodes.push(
        await NodeProcess.start({
          nodeName: `bench${i}_${runId}`,
          instanceName: `B${runId}`,
          amqpUrl: serviceUrls.rabbitmq,
          dbUrl: db.url,
          queuePrefix: broker.prefix,
        }),
      );
    }
    if (args.idle !== undefined) Object.assign(out, await idleScale(nodes[1]!, Number(args.idle)));
    if (args.storm !== undefined)
      Object.assign(
        out,
        await storm(nodes[0]!, nodes[1]!, Number(args.storm), Number(args['storm-sleep-ms']), () =>
          serverStatements(db.knex),
        ),
      );
    if (args.backlog !== undefined) {
      const config = {
        nodeName: `bench3_${runId}`,
        instanceName: `B${runId}`,
        amqpUrl: serviceUrls.rabbitmq,
        dbUrl: db.url,
        queuePrefix: broker.prefix,
      };
      Object.assign(out, await backlog(config, Number(args.backlog), Number(args['backlog-sessions'])));
    }
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
    await broker.close();
    await db.drop();
  }
  for (const [k, v] of Object.entries(out)) console.log(`${k}: ${Number.isInteger(v) ? v : v.toFixed(1)}`);
  return out;
}

const started = Date.now();
console.log(
  `pipeline bench: levels ${levels.join(',')}, ${clientCount} clients, ${cpus().length} CPUs, load ${loadavg()[0]!.toFixed(1)}`,
);
/** The throughput phases, the ceilings, the table, the result files and the summary line. */
async function fullRun(): Promise<void> {
  const { levels: pipeline, halfMax } = await pipelinePhases();
  const prefix = `bench.${runId}.`;
  const rawAmqp: PhaseResult[] = [];
  for (const inflight of levels) {
    rawAmqp.push(await rawAmqpPhase(serviceUrls.rabbitmq, prefix, inflight, warmupMs, measureMs));
    report(rawAmqp.at(-1)!);
  }
  const rawWs = await rawWsPhase(levels.at(-1)!, clientCount, warmupMs, measureMs);
  report(rawWs);
  const scaleFigures = await scale();

  const best = pipeline.reduce((a, b) => (b.perSecond > a.perSecond ? b : a));
  const rawAtBest = rawAmqp.find((r) => r.inflight === best.inflight)!;
  const summary = {
    ratio_vs_raw_amqp: best.perSecond / rawAtBest.perSecond,
    pipeline_max_per_s: best.perSecond,
    pipeline_max_inflight: best.inflight,
    raw_amqp_per_s_same_inflight: rawAtBest.perSecond,
    raw_ws_per_s: rawWs.perSecond,
    // All processes' CPU per round trip at the best level: on this machine's 2 CPUs the ratio cannot exceed
    // about raw/pipeline of these (the servers run on the same CPUs).
    pipeline_cpu_ms_per_trip: best.cpuMsPerTrip,
    raw_amqp_cpu_ms_per_trip: rawAtBest.cpuMsPerTrip,
    // Offered at half of pipeline_max_per_s (open loop); latency from each trip's scheduled start.
    p99_ms_at_half_max: halfMax.p99Ms,
    p50_ms_at_half_max: halfMax.p50Ms,
    half_max_per_s: halfMax.perSecond,
    half_max_errors: halfMax.errors,
    half_max_peak_inflight: halfMax.inflight,
    ...scaleFigures,
    targets: TARGETS,
    load_avg_1m: loadavg()[0],
    cpus: cpus().length,
    seconds: (Date.now() - started) / 1000,
  };
  console.log('\nlevel      pipeline/s   raw amqp/s  ratio   p50 ms   p99 ms  p999 ms');
  for (const p of pipeline) {
    const r = rawAmqp.find((x) => x.inflight === p.inflight)!;
    console.log(
      `${String(p.inflight).padStart(5)}  ${p.perSecond.toFixed(0).padStart(11)}  ${r.perSecond.toFixed(0).padStart(11)}` +
        `  ${(p.perSecond / r.perSecond).toFixed(2).padStart(5)}  ${p.p50Ms.toFixed(1).padStart(7)}  ` +
        `${p.p99Ms.toFixed(1).padStart(7)}  ${p.p999Ms.toFixed(1).padStart(7)}`,
    );
  }
  console.log(
    `targets: ratio >= ${TARGETS.ratio_vs_raw_amqp} (measured ${summary.ratio_vs_raw_amqp.toFixed(2)}); ` +
      `p99 < ${TARGETS.p99_ms_at_half_max} ms at half max (measured ${halfMax.p99Ms.toFixed(1)} ms offered ${(best.perSecond / 2).toFixed(0)}/s)`,
  );
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(
    new URL('./results/latest.json', import.meta.url),
    JSON.stringify({ summary, pipeline, halfMax, rawAmqp, rawWs }, null, 2),
  );
  writeFileSync(new URL('./results/latest.svg', import.meta.url), chartSvg(pipeline, rawAmqp, rawWs));
  console.log(JSON.stringify(summary));
}

if (args['scale-only']) {
  const scaleFigures = await scale();
  console.log(
    JSON.stringify({ ...scaleFigures, targets: TARGETS, load_avg_1m: loadavg()[0], cpus: cpus().length }),
  );
} else {
  await fullRun();
}
