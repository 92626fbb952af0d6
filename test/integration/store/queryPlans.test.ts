import { expect } from 'chai';
import type { Knex } from 'knex';
import { migrateLatest } from '../../../src/store/migrate.ts';
import { SqlClusterStore } from '../../../src/store/SqlClusterStore.ts';
import { randomId } from '../../../src/util/ids.ts';
import { createTestDatabase, type TestDatabase } from '../../../harness/databases.ts';
import { requireService } from '../../../harness/services.ts';
import { storeMigrationSets, TestClock } from './storeFixture.ts';

const DAY = 86_400_000;
const SESSIONS = 4000;
const USERS = 400;
const NODES = 40;

/** Returned by a case's `run`: binding values to replace before EXPLAIN (see `capture`). */
class Rebind {
  readonly map: Map<unknown, unknown>;
  constructor(entries: [unknown, unknown][]) {
    this.map = new Map(entries);
  }
}

interface Statement {
  sql: string;
  bindings: readonly unknown[];
}

interface PlanRow {
  table: string | null;
  type: string | null;
  key: string | null;
  Extra: string | null;
}

interface AnalyzeRow extends PlanRow {
  r_rows: number | string | null;
}

/**
 * `docs/store.md` 5 / BR-5: no per-HELLO query and no periodic-job query may scan a whole table. Each operation is run
 * against a populated MariaDB schema; every distinct SELECT/UPDATE/DELETE it sent is EXPLAINed and must use an index
 * access (never type ALL, nor a full index scan), and the named index of the inventory must be among those used.
 */
describe('ClusterStoreAndForward query plans [MariaDB]', function () {
  this.timeout(60_000);
  let db: TestDatabase | undefined;
  let knex: Knex;
  let store: SqlClusterStore;
  const clock = new TestClock();
  const now = clock.value;
  const sessionIds: string[] = [];
  const userOf = (i: number) => `user-${i % USERS}`;

  before(async function () {
    await requireService(this, 'mariadb');
    db = await createTestDatabase('mysql');
    knex = db.knex;
    await migrateLatest(knex, storeMigrationSets);
    store = new SqlClusterStore(knex, {
      nodeName: 'node-0',
      now: clock.now,
      scavengeIntervalMs: DAY / 24,
      // Few idle topics, as in production; with most rows qualifying a scan is the right plan anyway.
      topicIdleRetentionMs: 29 * DAY,
    });
    await populate();
  });

  after(async () => {
    await db?.drop();
  });

  async function insertChunked(table: string, rows: Record<string, unknown>[]): Promise<void> {
    for (let i = 0; i < rows.length; i += 500) await knex(table).insert(rows.slice(i, i + 500));
  }

  /** Rows spread over 30 days, users, nodes and apps, so every filter the jobs use is selective. */
  async function populate(): Promise<void> {
    const spread = (i: number, n: number) => now - Math.floor((i / n) * 30 * DAY);
    const sessions = Array.from({ length: SESSIONS }, (_, i) => {
      const id = randomId(16);
      sessionIds.push(id);
      return {
        session_id: id,
        connection_id: i % 3 === 0 ? null : randomId(16),
        nodename: i % 3 === 0 ? null : `node-${i % NODES}`,
        user_id: userOf(i),
        client_lib: 'MatsSocket.js,1.0.0',
        app_name: `App${i % 20}`,
        app_version: `${i % 7}.${i % 5}.0`,
        created_timestamp: spread(i, SESSIONS),
        liveliness_timestamp: spread(i, SESSIONS),
      };
    });
    await insertChunked('mats_socket_session', sessions);
    const outbox = [];
    const inbox = [];
    const correlations = [];
    const dlq = [];
    for (let i = 0; i < SESSIONS * 3; i++) {
      const sid = sessionIds[i % SESSIONS]!;
      const ts = spread(i, SESSIONS * 3);
      outbox.push({
        session_id: sid,
        smid: randomId(12),
        trace_id: 't',
        type: 'SEND',
        stored_timestamp: ts,
        attempt_timestamp: i % 2 ? ts : null,
        delivery_count: i % 2,
        envelope: '{}',
      });
      inbox.push({ session_id: sid, cmid: String(i), stored_timestamp: ts });
      if (i % 3 === 0) {
        correlations.push({
          session_id: sid,
          smid: randomId(12),
          request_timestamp: ts,
          expires_timestamp: ts + 600_000,
          reply_terminator_id: 'x',
          client_endpoint_id: 'y',
          trace_id: 't',
        });
        dlq.push({
          session_id: sid,
          smid: randomId(12),
          user_id: userOf(i % SESSIONS),
          type: 'SEND',
          trace_id: 't',
          envelope: '{}',
          delivery_count: 10,
          reason: 'delivery_limit',
          original_stored_timestamp: ts,
          dead_lettered_timestamp: ts,
          dead_lettered_by_node: 'node-1',
        });
      }
    }
    await insertChunked('mats_socket_outbox', outbox);
    await insertChunked('mats_socket_inbox', inbox);
    await insertChunked('mats_socket_request_out', correlations);
    await insertChunked('mats_socket_dlq', dlq);
    const topics = Array.from({ length: 200 }, (_, i) => ({
      topic_id: `topic-${i}`,
      epoch: 'abcdef',
      last_seq: 50,
      last_published_timestamp: spread(i, 200),
    }));
    await insertChunked('mats_socket_topic', topics);
    const log = topics.flatMap((t, ti) =>
      Array.from({ length: 50 }, (_, s) => ({
        topic_id: t.topic_id,
        seq: s + 1,
        trace_id: 't',
        envelope: '{}',
        stored_timestamp: spread(ti * 50 + s, 200 * 50),
      })),
    );
    await insertChunked('mats_socket_topic_log', log);
    await knex.raw(
      'ANALYZE TABLE mats_socket_session, mats_socket_outbox, mats_socket_inbox, mats_socket_request_out, mats_socket_dlq, mats_socket_topic, mats_socket_topic_log',
    );
  }

  /**
   * Runs `fn`, collecting the distinct SELECT/UPDATE/DELETE statements it sent. If `fn` returns a {@link Rebind},
   * bindings are replaced through it: an operation that deleted its row is EXPLAINed for a row that still exists
   * (otherwise MariaDB only reports "Impossible WHERE noticed after reading const tables").
   */
  async function capture(fn: () => Promise<unknown>): Promise<Statement[]> {
    const seen = new Map<string, Statement>();
    const listener = (q: { sql: string; bindings?: readonly unknown[] }) => {
      if (/^\s*(select|update|delete)\b/i.test(q.sql) && !seen.has(q.sql)) {
        seen.set(q.sql, { sql: q.sql, bindings: q.bindings ?? [] });
      }
    };
    knex.on('query', listener);
    let result: unknown;
    try {
      result = await fn();
    } finally {
      knex.off('query', listener);
    }
    const swap = result instanceof Rebind ? result.map : undefined;
    return [...seen.values()].map((st) =>
      swap ? { sql: st.sql, bindings: st.bindings.map((b) => (swap.has(b) ? swap.get(b) : b)) } : st,
    );
  }

  async function explain(s: Statement): Promise<PlanRow[]> {
    const [rows] = (await knex.raw(`EXPLAIN ${s.sql}`, s.bindings as Knex.RawBinding[])) as [PlanRow[]];
    return rows;
  }

  /**
   * An index-ordered scan that stops at LIMIT shows as type 'index' but reads only a few rows: MariaDB's ANALYZE
   * (which runs the SELECT) reports the rows actually read, which must stay far below the table size.
   */
  async function rowsReadByLimitedScan(s: Statement, table: string): Promise<number> {
    const [rows] = (await knex.raw(`ANALYZE ${s.sql}`, s.bindings as Knex.RawBinding[])) as [AnalyzeRow[]];
    return Number(rows.find((r) => r.table === table)?.r_rows ?? Infinity);
  }

  /** A real smid / correlation of a session, so lookups touch rows (absent keys give 'Impossible WHERE'). */
  async function existing(table: string, sessionIndex: number): Promise<{ sid: string; smid: string }> {
    const row = (await knex(table)
      .select('session_id', 'smid')
      .where('session_id', sessionIds[sessionIndex]!)
      .first()) as {
      session_id: string;
      smid: string;
    };
    return { sid: row.session_id, smid: row.smid };
  }

  const s = (i: number) => sessionIds[i]!;
  const cases: { name: string; expectIndexes: string[]; run: () => Promise<unknown> }[] = [
    {
      name: 'HELLO: count sessions of the user',
      expectIndexes: ['ix_mss_user'],
      run: () => store.getSessionsCount({ userId: userOf(7), excludeSessionId: s(7) }),
    },
    {
      name: 'HELLO: resume (select for update + update)',
      expectIndexes: ['PRIMARY'],
      run: () =>
        store.registerResumedSession({
          sessionId: s(8),
          userId: userOf(8),
          connectionId: 'c',
          clientLib: 'x',
          appName: 'A',
          appVersion: '1',
        }),
    },
    {
      name: 'HELLO: unmark attempted',
      expectIndexes: ['ix_mso_fetch'],
      run: () => store.outboxMessagesUnmarkAttemptedDelivery(s(9)),
    },
    {
      name: 'forward: fetch outbox',
      expectIndexes: ['ix_mso_fetch'],
      run: () => store.getMessagesFromOutbox(s(10), 20),
    },
    {
      name: 'forward: batch fetch over sessions',
      expectIndexes: ['ix_mso_fetch'],
      run: () => store.getMessagesFromOutboxBatch([50, 51, 52, 53].map(s), 20),
    },
    {
      name: 'forward: mark attempted',
      expectIndexes: ['ux_mso_smid'],
      run: () => store.outboxMessagesAttemptedDelivery(s(11), ['a', 'b']),
    },
    {
      name: 'forward: complete',
      expectIndexes: ['ux_mso_smid'],
      run: () => store.outboxMessagesComplete(s(12), ['a', 'b']),
    },
    {
      // One statement with (session_id = ? AND smid IN (…)) OR …: MariaDB ranges over either key's session prefix.
      name: 'forward: batch complete over sessions',
      expectIndexes: ['ux_mso_smid|ix_mso_fetch'],
      run: async () => {
        const entries = [13, 14, 15].map((i) => ({ sessionId: s(i), ids: ['a', 'b', 'c'] }));
        await store.outboxMessagesCompleteBatch(entries);
      },
    },
    {
      name: 'forward: batch mark by row id',
      expectIndexes: ['PRIMARY'],
      run: () => store.outboxRowsAttemptedDelivery([13, 14, 15]),
    },
    {
      name: 'forward: dead-letter',
      expectIndexes: ['ux_mso_smid'],
      run: async () => {
        const m = await existing('mats_socket_outbox', 16);
        const other = await existing('mats_socket_outbox', 116);
        expect(await store.outboxMessagesDeadLetter(m.sid, [m.smid], 'undeliverable')).to.deep.equal([
          m.smid,
        ]);
        return new Rebind([
          [m.sid, other.sid],
          [m.smid, other.smid],
        ]);
      },
    },
    {
      name: 'C2S: lock session, inbox insert/get/update/delete',
      expectIndexes: ['PRIMARY'],
      run: async () => {
        await store.storeMessageIdInInbox(s(17), 'new-cmid');
        await store.getMessageFromInbox(s(17), 'new-cmid');
        await store.updateMessageInInbox(s(17), 'new-cmid', '{}');
        await store.deleteMessageIdsFromInbox(s(17), ['new-cmid']);
        await store.storeMessageIdsInInbox([18, 19].map((i) => ({ sessionId: s(i), cmid: 'b' })));
        await store.deleteMessageIdsFromInboxBatch([18, 19].map((i) => ({ sessionId: s(i), ids: ['b'] })));
      },
    },
    {
      name: 'store S2C message (single and batch)',
      expectIndexes: ['PRIMARY'],
      run: async () => {
        await store.storeMessageInOutbox({
          sessionId: s(20),
          smid: 'new-smid',
          traceId: 't',
          type: 'SEND',
          envelope: '{}',
        });
        await store.storeMessagesInOutbox(
          [21, 22].map((i) => ({
            sessionId: s(i),
            smid: 'b',
            traceId: 't',
            type: 'SEND' as const,
            envelope: '{}',
          })),
        );
      },
    },
    {
      name: 'client reply: get-and-delete correlation',
      expectIndexes: ['PRIMARY'],
      run: async () => {
        const c = await existing('mats_socket_request_out', 24);
        const other = await existing('mats_socket_request_out', 27);
        expect(await store.getAndDeleteRequestCorrelation(c.sid, c.smid)).to.not.equal(null);
        return new Rebind([
          [c.sid, other.sid],
          [c.smid, other.smid],
        ]);
      },
    },
    {
      name: 'poke routing: current node',
      expectIndexes: ['PRIMARY'],
      run: () => store.getCurrentRegisteredNodeForSession(s(24)),
    },
    {
      name: 'liveliness job',
      expectIndexes: ['PRIMARY'],
      run: () => store.notifySessionLiveliness(sessionIds.slice(30, 60)),
    },
    {
      name: 'timeout job',
      expectIndexes: ['ix_mss_liveliness'],
      run: () => store.timeoutSessions(now - 29.9 * DAY),
    },
    {
      name: 'scavenger',
      expectIndexes: ['ix_msi_stored', 'ix_mso_stored'],
      run: () => store.scavengeSessionRemnants(),
    },
    {
      name: 'self-heal: pending outbox of live sessions',
      expectIndexes: [],
      run: () => store.hasPendingOutbox(sessionIds.slice(100, 150), now - 10_000),
    },
    {
      name: 'outbox depth job and admin page: depths of live sessions',
      expectIndexes: ['ix_mso_fetch'],
      run: () => store.getOutboxDepths(sessionIds.slice(150, 200)),
    },
    {
      name: 'self-heal: rows registered to this node',
      expectIndexes: ['ix_mss_node'],
      run: () => store.getSessionsRegisteredToThisNode(now - 120_000),
    },
    {
      name: 'boot: deregister this node',
      expectIndexes: ['ix_mss_node'],
      run: () => store.deregisterAllSessionsOfThisNode(),
    },
    {
      name: 'request timeout sweep',
      expectIndexes: ['ix_msr_expires'],
      run: () => store.getExpiredRequestCorrelations(now - 29 * DAY, 100),
    },
    {
      name: 'topic append / replay',
      expectIndexes: ['PRIMARY'],
      run: async () => {
        await store.appendTopicMessage({ topicId: 'topic-3', traceId: 't', envelope: '{}' });
        await store.getTopicReplay('topic-3', 10, 100);
      },
    },
    {
      name: 'topic purge',
      expectIndexes: ['ix_mstl_stored', 'ix_mst_published'],
      run: () => store.purgeTopicLog(now - 29.5 * DAY),
    },
    {
      name: 'DLQ list by session / user / time, retention',
      expectIndexes: ['ix_msd_session', 'ix_msd_user', 'ix_msd_time'],
      run: async () => {
        await store.listDeadLetters({ sessionId: s(40) });
        await store.listDeadLetters({ userId: userOf(41) });
        await store.listDeadLetters({ fromTs: now - DAY, toTs: now });
        await store.purgeDeadLetters({ olderThanTs: now - 29.5 * DAY });
      },
    },
    {
      name: 'introspection: sessions by user / app / active',
      // onlyActive … ORDER BY session_id LIMIT n: with most sessions active, a PK-ordered scan that stops at the
      // limit is the better plan (checked above by the rows it actually reads).
      expectIndexes: ['ix_mss_user', 'ix_mss_app', 'ix_mss_node|PRIMARY'],
      run: async () => {
        await store.getSessions({ userId: userOf(42) });
        await store.getSessions({ appName: 'App3', appVersionAtOrAbove: '6' });
        await store.getSessions({ onlyActive: true, limit: 10 });
      },
    },
  ];

  for (const c of cases) {
    it(`${c.name} uses ${c.expectIndexes.join(', ') || 'an index'}, no full scans`, async () => {
      const statements = await capture(c.run);
      expect(statements.length, 'statements captured').to.be.greaterThan(0);
      const used = new Set<string>();
      for (const st of statements) {
        for (const row of await explain(st)) {
          if (row.table === null || row.type === null) continue; // e.g. "Impossible WHERE", no table access
          // <derivedN> / <unionN,M>: reading a bounded temporary result (e.g. LIMITed per session), not a table.
          if (row.table.startsWith('<')) continue;
          const where = `${row.table} in: ${st.sql}`;
          expect(row.type, `full table scan of ${where}`).to.not.equal('ALL');
          if (row.type === 'index') {
            expect(/^select .* limit \?$/is.test(st.sql), `full index scan of ${where}`).to.be.true;
            const alias = new RegExp(`\`(mats_socket_\\w+)\` as \`${row.table}\``).exec(st.sql);
            const [{ n }] = (await knex(alias?.[1] ?? row.table).count({ n: '*' })) as [{ n: number }];
            expect(await rowsReadByLimitedScan(st, row.table), `rows read by ${where}`).to.be.below(n / 10);
          }
          if (row.key) used.add(row.key);
        }
      }
      for (const alternatives of c.expectIndexes) {
        const ok = alternatives.split('|').some((ix) => used.has(ix));
        expect(ok, `uses ${alternatives} (used: ${[...used].join(', ')})`).to.be.true;
      }
    });
  }
});
