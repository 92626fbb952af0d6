/**
 * `npm run bench:store`: outbox throughput on MariaDB, stored → fetched → completed, in one run:
 *
 * - **single**: one transaction per message. `SINGLE_CONCURRENCY` sessions, each looping store (own transaction)
 *   → fetch → complete, on a pool of the same size;
 * - **batch**: the group-commit operations. `BATCH_CONNECTIONS` workers, each looping: `storeMessagesInOutbox` of
 *   `BATCH_SIZE` messages spread over `BATCH_SESSIONS` sessions (one transaction), `getMessagesFromOutboxBatch` for
 *   those sessions (one statement), then one `outboxMessagesCompleteBatch` statement.
 *
 * - **batch pipelined**: as a group-committing server does it, ACK deletes and new stores of one window share a
 *   transaction: each transaction stores batch N and completes batch N−1 (fetched after its commit), joined
 *   through the operations' `trx` parameter. Every message still goes stored → fetched → completed.
 * - **raw baseline**: no store code, the brief's reference workload: plain knex transactions of a 50-row INSERT plus
 *   a DELETE of those rows, on `BATCH_CONNECTIONS` connections. It shows what this machine does at that moment
 *   (other load included), so the store's figures can be judged against it.
 *
 * A fresh database `ms_bench_<random>` is created and dropped afterwards. Each phase runs `PHASE_MS` after a short
 * warm-up, so the whole run stays well under 60 s. Prints a table, then (last line) the figures as JSON.
 *
 * Environment: `MARIADB_URL` (default mysql://root@127.0.0.1:3306), `PHASE_MS` (default 5000).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import type { Knex } from 'knex';
import { createDatabase, redactUrl } from '../src/store/database.ts';
import { defaultMigrationSets, migrateLatest } from '../src/store/migrate.ts';
import { SqlClusterStore } from '../src/store/SqlClusterStore.ts';
import type { OutboxMessageInput, SessionIds } from '../src/store/storeTypes.ts';
import { randomId } from '../src/util/ids.ts';

const ADMIN_URL = process.env.MARIADB_URL ?? 'mysql://root@127.0.0.1:3306';
const PHASE_MS = Number(process.env.PHASE_MS ?? 5000);
const WARMUP_MS = 1000;
const SINGLE_CONCURRENCY = 16;
const BATCH_CONNECTIONS = 4;
const BATCH_SIZE = 50;
const BATCH_SESSIONS = 10;
const ENVELOPE = JSON.stringify({
  t: 'SEND',
  eid: 'ClientSide.terminator',
  tid: 'bench-trace',
  debug: { smcts: 1 },
});
const MESSAGE = JSON.stringify({ string: 'x'.repeat(200), number: 3.14 });

interface PhaseResult {
  messages: number;
  ms: number;
  perSecond: number;
}

function message(sessionId: string): OutboxMessageInput {
  return {
    sessionId,
    smid: randomId(12),
    traceId: 'bench-trace',
    type: 'SEND',
    envelope: ENVELOPE,
    messageText: MESSAGE,
  };
}

async function registerSessions(store: SqlClusterStore, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const sessionId = randomId(16);
    await store.registerNewSession({
      sessionId,
      userId: `bench-${i}`,
      connectionId: randomId(16),
      clientLib: 'bench',
      appName: 'bench',
      appVersion: '1',
    });
    ids.push(sessionId);
  }
  return ids;
}

/** Runs `loops` concurrent workers until the deadline; each iteration returns how many messages it completed. */
async function phase(loops: number, iteration: (worker: number) => Promise<number>): Promise<PhaseResult> {
  const warmEnd = Date.now() + WARMUP_MS;
  await Promise.all(
    Array.from({ length: loops }, async (_, w) => {
      while (Date.now() < warmEnd) await iteration(w);
    }),
  );
  let messages = 0;
  const start = Date.now();
  const end = start + PHASE_MS;
  await Promise.all(
    Array.from({ length: loops }, async (_, w) => {
      while (Date.now() < end) {
        // Not `messages += await …`: that reads `messages` before awaiting and loses other workers' counts.
        const n = await iteration(w);
        messages += n;
      }
    }),
  );
  const ms = Date.now() - start;
  return { messages, ms, perSecond: Math.round((messages * 1000) / ms) };
}

async function single(knex: Knex): Promise<PhaseResult> {
  const store = new SqlClusterStore(knex, { nodeName: 'bench-single' });
  const sessions = await registerSessions(store, SINGLE_CONCURRENCY);
  return phase(SINGLE_CONCURRENCY, async (w) => {
    const sid = sessions[w]!;
    const m = message(sid);
    await store.storeMessageInOutbox(m);
    const fetched = await store.getMessagesFromOutbox(sid, 20);
    if (fetched.length !== 1) throw new Error(`single: fetched ${fetched.length} rows, expected 1`);
    return store.outboxMessagesComplete(
      sid,
      fetched.map((f) => f.smid),
    );
  });
}

async function batched(knex: Knex): Promise<PhaseResult> {
  const store = new SqlClusterStore(knex, { nodeName: 'bench-batch' });
  const sessions = await registerSessions(store, BATCH_CONNECTIONS * BATCH_SESSIONS);
  return phase(BATCH_CONNECTIONS, async (w) => {
    const mine = sessions.slice(w * BATCH_SESSIONS, (w + 1) * BATCH_SESSIONS);
    const batch = Array.from({ length: BATCH_SIZE }, (_, i) => message(mine[i % mine.length]!));
    const results = await store.storeMessagesInOutbox(batch);
    if (results.some((r) => !r.sessionExists || r.smidInUse))
      throw new Error('batch: a message was not stored');
    const fetched = await store.getMessagesFromOutboxBatch(mine, 20);
    const entries = [...fetched].map(([sessionId, rows]) => ({ sessionId, ids: rows.map((r) => r.smid) }));
    const completed = await store.outboxMessagesCompleteBatch(entries);
    if (completed !== BATCH_SIZE) throw new Error(`batch: completed ${completed}, expected ${BATCH_SIZE}`);
    return completed;
  });
}

async function pipelined(knex: Knex): Promise<PhaseResult> {
  const store = new SqlClusterStore(knex, { nodeName: 'bench-pipelined' });
  const sessions = await registerSessions(store, BATCH_CONNECTIONS * BATCH_SESSIONS);
  const pending: SessionIds[][] = Array.from({ length: BATCH_CONNECTIONS }, () => []);
  return phase(BATCH_CONNECTIONS, async (w) => {
    const mine = sessions.slice(w * BATCH_SESSIONS, (w + 1) * BATCH_SESSIONS);
    const batch = Array.from({ length: BATCH_SIZE }, (_, i) => message(mine[i % mine.length]!));
    const toComplete = pending[w]!;
    const completed = await store.transaction(async (trx) => {
      const results = await store.storeMessagesInOutbox(batch, trx);
      if (results.some((r) => !r.sessionExists || r.smidInUse))
        throw new Error('pipelined: a message was not stored');
      return store.outboxMessagesCompleteBatch(toComplete, trx);
    });
    const fetched = await store.getMessagesFromOutboxBatch(mine, 2 * BATCH_SIZE);
    pending[w] = [...fetched].map(([sessionId, rows]) => ({ sessionId, ids: rows.map((r) => r.smid) }));
    return completed;
  });
}

async function rawBaseline(knex: Knex): Promise<PhaseResult> {
  await knex.schema.createTable('bench_raw', (t) => {
    t.bigIncrements('id');
    t.string('session_id', 64).notNullable();
    t.string('smid', 64).notNullable();
    t.text('envelope', 'longtext').notNullable();
    t.text('message_text', 'longtext');
    t.unique(['session_id', 'smid'], { indexName: 'ux_bench_raw' });
  });
  return phase(BATCH_CONNECTIONS, async () => {
    const sid = randomId(16);
    const rows = Array.from({ length: BATCH_SIZE }, () => ({
      session_id: sid,
      smid: randomId(12),
      envelope: ENVELOPE,
      message_text: MESSAGE,
    }));
    await knex.transaction(async (trx) => {
      await trx('bench_raw').insert(rows);
      // Index hint: on a near-empty table MariaDB would scan, and concurrent scanning DELETEs deadlock.
      await trx.raw(
        `DELETE t FROM bench_raw AS t FORCE INDEX (ux_bench_raw) WHERE t.session_id = ? AND t.smid IN (${rows.map(() => '?').join(', ')})`,
        [sid, ...rows.map((r) => r.smid)],
      );
    });
    return BATCH_SIZE;
  });
}

async function main(): Promise<void> {
  const name = `ms_bench_${randomBytes(4).toString('hex')}`;
  const admin = createDatabase(ADMIN_URL, { poolMax: 1 });
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const dbUrl = url.toString();
  await admin.raw(`CREATE DATABASE \`${name}\``);
  const started = Date.now();
  try {
    const setup = createDatabase(dbUrl, { poolMax: 1 });
    const version = (await setup.raw('SELECT VERSION() AS v, @@innodb_flush_log_at_trx_commit AS f')) as [
      { v: string; f: number }[],
    ];
    await migrateLatest(setup, defaultMigrationSets().slice(0, 1));
    await setup.destroy();

    const singleKnex = createDatabase(dbUrl, { poolMax: SINGLE_CONCURRENCY });
    const singleResult = await single(singleKnex).finally(() => singleKnex.destroy());
    const batchKnex = createDatabase(dbUrl, { poolMax: BATCH_CONNECTIONS });
    const batchResult = await batched(batchKnex).finally(() => batchKnex.destroy());

    const pipeKnex = createDatabase(dbUrl, { poolMax: BATCH_CONNECTIONS });
    const pipeStore = new SqlClusterStore(pipeKnex, { nodeName: 'bench-drain' });
    const pipeResult = await pipelined(pipeKnex)
      .then(async (r) => {
        // The last fetched batch of each worker is still pending: complete it so the check below holds.
        const left = await pipeKnex('mats_socket_outbox').select('session_id', 'smid');
        await pipeStore.outboxMessagesCompleteBatch(
          left.map((x: { session_id: string; smid: string }) => ({ sessionId: x.session_id, ids: [x.smid] })),
        );
        return r;
      })
      .finally(() => pipeKnex.destroy());

    const rawKnex = createDatabase(dbUrl, { poolMax: BATCH_CONNECTIONS });
    const rawResult = await rawBaseline(rawKnex).finally(() => rawKnex.destroy());

    const check = createDatabase(dbUrl, { poolMax: 1 });
    const [{ n }] = (await check('mats_socket_outbox').count({ n: '*' })) as [{ n: number }];
    await check.destroy();
    if (Number(n) !== 0) throw new Error(`${n} outbox rows left: not every message was completed`);

    const info = version[0][0]!;
    console.log(
      `store bench on ${redactUrl(ADMIN_URL)} (${info.v}, innodb_flush_log_at_trx_commit=${info.f})`,
    );
    console.log('');
    console.log(
      `load average ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')} on ${cpus().length} CPUs`,
    );
    console.log('mode      | connections | per transaction           | messages | seconds | msgs/s');
    console.log('----------|-------------|---------------------------|----------|---------|-------');
    const row = (mode: string, conns: number, what: string, r: PhaseResult) =>
      console.log(
        `${mode.padEnd(9)} | ${String(conns).padEnd(11)} | ${what.padEnd(25)} | ${String(r.messages).padStart(8)} | ${(r.ms / 1000).toFixed(1).padStart(7)} | ${String(r.perSecond).padStart(6)}`,
      );
    row('single', SINGLE_CONCURRENCY, '1 message', singleResult);
    row('batch', BATCH_CONNECTIONS, `${BATCH_SIZE} msgs / ${BATCH_SESSIONS} sessions`, batchResult);
    row('pipelined', BATCH_CONNECTIONS, `${BATCH_SIZE} stored + ${BATCH_SIZE} completed`, pipeResult);
    row('raw', BATCH_CONNECTIONS, `${BATCH_SIZE}-row INSERT+DELETE`, rawResult);
    console.log('');
    const figures = {
      single_msgs_per_s: singleResult.perSecond,
      batch_msgs_per_s: batchResult.perSecond,
      batch_speedup: Math.round((batchResult.perSecond / singleResult.perSecond) * 10) / 10,
      batch_pipelined_msgs_per_s: pipeResult.perSecond,
      raw_baseline_rows_per_s: rawResult.perSecond,
      batch_vs_raw_baseline: Math.round((batchResult.perSecond / rawResult.perSecond) * 100) / 100,
      batch_pipelined_vs_raw_baseline: Math.round((pipeResult.perSecond / rawResult.perSecond) * 100) / 100,
      single_connections: SINGLE_CONCURRENCY,
      batch_connections: BATCH_CONNECTIONS,
      batch_size: BATCH_SIZE,
      batch_sessions_per_transaction: BATCH_SESSIONS,
      phase_ms: PHASE_MS,
      load_average_1m: Math.round(loadavg()[0]! * 10) / 10,
      total_s: Math.round((Date.now() - started) / 100) / 10,
    };
    try {
      mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
      writeFileSync(
        new URL(`./results/store-${Date.now()}.json`, import.meta.url),
        `${JSON.stringify(figures)}\n`,
      );
    } catch {
      // The results file is a convenience; the figures are printed below either way.
    }
    console.log(JSON.stringify(figures));
  } finally {
    await admin.raw(`DROP DATABASE IF EXISTS \`${name}\``);
    await admin.destroy();
  }
}

main().catch((err: unknown) => {
  console.error(`bench:store failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
