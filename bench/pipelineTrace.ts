/**
 * `npx tsx bench/pipelineTrace.ts [--n 20] [--concurrent 1] [--sessions 1] [--queries]`: where one full-pipeline round trip waits. Two nodes
 * (MariaDB, RabbitMQ) as in `npm run bench`; a raw WebSocket client with the TIMESTAMPS/NODES debug options sends
 * REQUESTs to `Fault.echo` and prints, per stage, the median of: client send → ACK, client send → server received
 * (cmrts), → backend message sent (mmsts, inside the incoming transaction), → reply received by the reply handler
 * (mmrrts), → reply written to the socket (mscts), → RESOLVE received by the client.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';
import { createTestDatabase } from '../harness/databases.ts';
import { testAuth } from '../harness/startTestCluster.ts';
import { startBenchCluster } from './pipeline/benchCluster.ts';

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '20' },
    concurrent: { type: 'string', default: '1' },
    queries: { type: 'boolean', default: false },
    sessions: { type: 'string', default: '1' },
  },
});
const n = Number(args.n);
const concurrent = Number(args.concurrent);
const sessionCount = Number(args.sessions);

interface Trace {
  sent: number;
  ack?: number;
  resolved?: number;
  debug?: Record<string, number | string>;
}

const db = await createTestDatabase('mysql');
const cluster = await startBenchCluster(db);
// Statements per round trip, by shape (with --queries).
const queryCounts = new Map<string, number>();
// Transactions by the sequence of their statements' first words (with --queries).
const txShapes = new Map<string, number>();
const openTx = new Map<string, string[]>();
let countQueries = false;
if (process.argv.includes('--queries')) {
  for (const node of cluster.nodes) {
    node.store.knex.on('query', (q: { sql: string; __knexTxId?: string }) => {
      if (!countQueries) return;
      const shape = q.sql
        .replace(/\(\?(, \?)*\)/g, '(…)')
        .replace(/trx\d+/g, 'trxN')
        .slice(0, 110);
      queryCounts.set(shape, (queryCounts.get(shape) ?? 0) + 1);
      if (q.__knexTxId === undefined) return;
      const steps = openTx.get(q.__knexTxId) ?? [];
      openTx.set(q.__knexTxId, steps);
      steps.push(/^\s*(\w+)(?:[^`]*`(\w+)`)?/.exec(q.sql)!.slice(1).join(' ').trim());
      if (/^(COMMIT|ROLLBACK)/i.test(q.sql)) {
        openTx.delete(q.__knexTxId);
        const key = steps.join(' > ');
        txShapes.set(key, (txShapes.get(key) ?? 0) + 1);
      }
    });
  }
}
const traces = new Map<string, Trace>();
const waiters = new Map<string, () => void>();
// Wall clock for comparing with the server's epoch-ms debug stamps.
const now = (): number => performance.timeOrigin + performance.now();

/** One raw session; `--sessions` of them alternate between the two nodes. */
async function openSocket(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url, ['matssocket'], { perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    ws.on('error', reject);
    ws.on('message', (data) => {
      const t = now();
      for (const e of JSON.parse((data as Buffer).toString()) as Record<string, unknown>[]) {
        if (e.t === 'WELCOME') resolve();
        else if (e.t === 'ACK') {
          const tr = traces.get(String(e.cmid));
          if (tr) tr.ack = t;
        } else if (e.t === 'RESOLVE') {
          ws.send(JSON.stringify([{ t: 'ACK', smid: e.smid }]));
          const tr = traces.get(String(e.cmid));
          if (tr) {
            tr.resolved = t;
            tr.debug = e.debug as Record<string, number>;
          }
          waiters.get(String(e.cmid))?.();
        }
      }
    });
    ws.once('open', () =>
      ws.send(
        JSON.stringify([
          { t: 'HELLO', clv: 'trace', an: 'Trace', av: '1', auth: testAuth('enableAllDebugOptions') },
        ]),
      ),
    );
  });
  return ws;
}
const sockets = await Promise.all(
  Array.from({ length: sessionCount }, (_, i) => openSocket(cluster.nodes[i % 2]!.url)),
);

let next = 0;
async function one(lane = 0): Promise<void> {
  const ws = sockets[lane % sockets.length]!;
  const cmid = String(++next);
  const done = new Promise<void>((r) => waiters.set(cmid, r));
  traces.set(cmid, { sent: now() });
  ws.send(
    JSON.stringify([
      { t: 'REQUEST', eid: 'Fault.echo', tid: `trace${cmid}`, cmid, rd: 3, msg: { id: cmid } },
    ]),
  );
  await done;
}
// Warm up.
for (let i = 0; i < 5; i++) await one();
traces.clear();
countQueries = true;
// Pool pressure: how often a node's knex pool had acquirers waiting (sampled every 5 ms).
interface TarnPool {
  numUsed(): number;
  numPendingAcquires(): number;
}
const poolSamples = { samples: 0, saturated: 0, pending: 0 };
const sampler = setInterval(() => {
  for (const node of cluster.nodes) {
    const pool = (node.store.knex.client as { pool?: TarnPool }).pool;
    if (!pool) continue;
    poolSamples.samples++;
    const pending = pool.numPendingAcquires();
    poolSamples.pending += pending;
    if (pending > 0) poolSamples.saturated++;
  }
}, 5);
const cpu0 = process.cpuUsage();
const wall0 = performance.now();
await Promise.all(
  Array.from({ length: concurrent }, async (_, lane) => {
    while (next < 5 + n) await one(lane);
  }),
);

const cpu = process.cpuUsage(cpu0);
clearInterval(sampler);
console.log(
  `DB pool: acquirers waiting in ${((poolSamples.saturated / Math.max(1, poolSamples.samples)) * 100).toFixed(0)} % ` +
    `of samples, ${(poolSamples.pending / Math.max(1, poolSamples.samples)).toFixed(1)} waiting on average`,
);
countQueries = false;
if (txShapes.size > 0) {
  console.log('Transactions per round trip, by statement sequence:');
  for (const [shape, c] of [...txShapes].sort((a, b) => b[1] - a[1]).slice(0, 12)) {
    console.log(`  ${(c / n).toFixed(2).padStart(6)}  ${shape.slice(0, 150)}`);
  }
}
if (queryCounts.size > 0) {
  const total = [...queryCounts.values()].reduce((a, b) => a + b, 0);
  console.log(`SQL statements: ${(total / n).toFixed(2)} per round trip`);
  for (const [shape, c] of [...queryCounts].sort((a, b) => b[1] - a[1])) {
    console.log(`  ${(c / n).toFixed(2).padStart(6)}  ${shape}`);
  }
}
const wallMs = performance.now() - wall0;
console.log(
  `wall ${wallMs.toFixed(0)} ms, ${((n * 1000) / wallMs).toFixed(0)}/s, process CPU ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms ` +
    `(${((cpu.user + cpu.system) / 1000 / n).toFixed(2)} ms per round trip, ${(((cpu.user + cpu.system) / 1000 / wallMs) * 100).toFixed(0)} % of one CPU; system ${((cpu.system / (cpu.user + cpu.system)) * 100).toFixed(0)} %)`,
);
const stages: Record<string, number[]> = {
  'send→ack': [],
  'send→cmrts': [],
  'cmrts→mmsts': [],
  'mmsts→mmrrts': [],
  'mmrrts→mscts': [],
  'mscts→resolved': [],
  total: [],
};
for (const tr of traces.values()) {
  const d = tr.debug ?? {};
  const num = (k: string): number => Number(d[k]);
  if (tr.ack !== undefined) stages['send→ack']!.push(tr.ack - tr.sent);
  stages['send→cmrts']!.push(num('cmrts') - tr.sent);
  stages['cmrts→mmsts']!.push(num('mmsts') - num('cmrts'));
  stages['mmsts→mmrrts']!.push(num('mmrrts') - num('mmsts'));
  stages['mmrrts→mscts']!.push(num('mscts') - num('mmrrts'));
  stages['mscts→resolved']!.push(tr.resolved! - num('mscts'));
  stages.total!.push(tr.resolved! - tr.sent);
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const p90 = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)] ?? NaN;
console.log(`${n} REQUESTs, ${concurrent} concurrent (median / p90 ms):`);
for (const [k, xs] of Object.entries(stages)) {
  console.log(`  ${k.padEnd(16)} ${median(xs).toFixed(1).padStart(7)} ${p90(xs).toFixed(1).padStart(7)}`);
}
for (const ws of sockets) ws.close();
await cluster.stop();
await db.drop();
