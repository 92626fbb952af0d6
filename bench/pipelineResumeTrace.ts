/**
 * `npx tsx bench/pipelineResumeTrace.ts [--n 1000]` (add `node --cpu-prof --import tsx` to profile): the resume half
 * of `--storm`, in one process so it can be profiled. Two in-process nodes (MariaDB, RabbitMQ); N sessions on node
 * 1 each get a reply they do not ACK; their sockets are dropped and all resume on node 2 (remote takeover); prints
 * the time until every reply is delivered again and this process's CPU time.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { BackendRuns, registerFaultEndpoints } from '../harness/faultEndpoints.ts';
import { createTestDatabase } from '../harness/databases.ts';
import { startTestCluster } from '../harness/startTestCluster.ts';
import { openSession, pooled } from './pipeline/scale.ts';

const { values: args } = parseArgs({ options: { n: { type: 'string', default: '1000' } } });
const n = Number(args.n);
const db = await createTestDatabase('mysql');
const cluster = await startTestCluster({
  nodes: 2,
  db,
  transport: 'rabbitmq',
  endpoints: registerFaultEndpoints(new BackendRuns()),
  server: { jobs: { selfHealIntervalMs: 300, selfHealMinAgeMs: 1000, selfHealStaleRegistrationMs: 2000 } },
});
const queryCounts = new Map<string, number>();
let counting = false;
for (const node of cluster.nodes) {
  node.store.knex.on('query', (q: { sql: string }) => {
    if (!counting) return;
    const shape = q.sql
      .replace(/\(\?(, \?)*\)/g, '(…)')
      .replace(/trx\d+/g, 'trxN')
      .slice(0, 100);
    queryCounts.set(shape, (queryCounts.get(shape) ?? 0) + 1);
  });
}
const [n1, n2] = cluster.nodes as [(typeof cluster.nodes)[0], (typeof cluster.nodes)[0]];
const userOf = (i: number): string => `resume${Math.floor(i / 50)}`;
const sessions = await pooled(
  Array.from({ length: n }, (_, i) => i),
  200,
  (i) => openSession(n1.url, userOf(i), undefined, false),
);
await pooled(sessions, 500, async (s) => {
  const resolved = new Promise<void>((r) => (s.onResolve = r));
  s.ws.send(
    JSON.stringify([{ t: 'REQUEST', eid: 'Fault.echo', tid: 'resume', cmid: 1, msg: { id: s.sid } }]),
  );
  await resolved;
});
for (const s of sessions) s.ws.terminate();
const t0 = performance.now();
const cpu0 = process.cpuUsage();
counting = true;
let lastWelcome = 0;
await pooled(
  sessions.map((s, i) => ({ s, i })),
  200,
  async ({ s, i }) => {
    const again = await openSession(n2.url, userOf(i), s.sid);
    lastWelcome = performance.now() - t0;
    if (again.resolves.size === 0) await new Promise<void>((r) => (again.onResolve = r));
    s.ws = again.ws;
  },
);
const ms = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
counting = false;
const totalQueries = [...queryCounts.values()].reduce((a, b) => a + b, 0);
console.log(`SQL statements: ${(totalQueries / n).toFixed(2)} per resume`);
for (const [shape, c] of [...queryCounts].sort((a, b) => b[1] - a[1]).slice(0, 15)) {
  console.log(`  ${(c / n).toFixed(2).padStart(6)}  ${shape}`);
}
console.log(
  `${n} resumes: last WELCOME ${lastWelcome.toFixed(0)} ms, all delivered ${ms.toFixed(0)} ms, ` +
    `process CPU ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms`,
);
for (const s of sessions) s.ws.terminate();
await cluster.stop();
await db.drop();
