import { expect } from 'chai';
import knexFactory from 'knex';
import type { Knex } from 'knex';
import { TABLES_IN_CREATION_ORDER } from '../../../migrations/matssocket/20250601000000_create_store_tables.ts';
import { DataAccessError, ErrorCode } from '../../../src/errors.ts';
import type { Logger } from '../../../src/logging.ts';
import type { Dialect } from '../../../src/store/database.ts';
import {
  defaultMigrationSets,
  migrateLatest,
  migrateRollbackAll,
  schemaStatus,
  verifySchemaLatest,
} from '../../../src/store/migrate.ts';
import { SqlClusterStore } from '../../../src/store/SqlClusterStore.ts';
import { describeEachDatabase } from '../../../harness/databases.ts';
import { runId } from '../../../harness/runState.ts';
import { expectRejection, newSession, storeMigrationSets } from './storeFixture.ts';

interface IndexInfo {
  table: string;
  columns: string[];
  unique: boolean;
}

/** Every secondary index of `docs/store.md` 4, by exact name. */
const EXPECTED_INDEXES: Record<string, IndexInfo> = {
  ix_mss_user: { table: 'mats_socket_session', columns: ['user_id'], unique: false },
  ix_mss_node: { table: 'mats_socket_session', columns: ['nodename'], unique: false },
  ix_mss_liveliness: { table: 'mats_socket_session', columns: ['liveliness_timestamp'], unique: false },
  ix_mss_app: { table: 'mats_socket_session', columns: ['app_name', 'app_version'], unique: false },
  ix_msi_stored: { table: 'mats_socket_inbox', columns: ['stored_timestamp'], unique: false },
  ux_mso_smid: { table: 'mats_socket_outbox', columns: ['session_id', 'smid'], unique: true },
  ix_mso_fetch: {
    table: 'mats_socket_outbox',
    columns: ['session_id', 'attempt_timestamp', 'id'],
    unique: false,
  },
  ix_mso_stored: { table: 'mats_socket_outbox', columns: ['stored_timestamp'], unique: false },
  ix_msr_expires: { table: 'mats_socket_request_out', columns: ['expires_timestamp'], unique: false },
  ix_msd_session: { table: 'mats_socket_dlq', columns: ['session_id', 'id'], unique: false },
  ix_msd_user: { table: 'mats_socket_dlq', columns: ['user_id', 'id'], unique: false },
  ix_msd_time: { table: 'mats_socket_dlq', columns: ['dead_lettered_timestamp'], unique: false },
  ix_mst_published: { table: 'mats_socket_topic', columns: ['last_published_timestamp'], unique: false },
  ix_mstl_stored: { table: 'mats_socket_topic_log', columns: ['stored_timestamp'], unique: false },
};

const EXPECTED_PKS: Record<string, string[]> = {
  mats_socket_session: ['session_id'],
  mats_socket_inbox: ['session_id', 'cmid'],
  mats_socket_outbox: ['id'],
  mats_socket_request_out: ['session_id', 'smid'],
  mats_socket_dlq: ['id'],
  mats_socket_topic: ['topic_id'],
  mats_socket_topic_log: ['topic_id', 'seq'],
  mats_socket_node: ['nodename'],
};

/** Reads the secondary indexes from the dialect's catalog. */
async function readIndexes(knex: Knex, dialect: Dialect): Promise<Record<string, IndexInfo>> {
  const out: Record<string, IndexInfo> = {};
  if (dialect === 'mysql') {
    const rows = (
      await knex.raw<[{ t: string; i: string; nu: number | string; c: string }[]]>(
        `SELECT table_name AS t, index_name AS i, non_unique AS nu, column_name AS c
         FROM information_schema.statistics
        WHERE table_schema = DATABASE() AND index_name <> 'PRIMARY'
        ORDER BY table_name, index_name, seq_in_index`,
      )
    )[0]!;
    for (const r of rows) {
      (out[r.i] ??= { table: r.t, columns: [], unique: Number(r.nu) === 0 }).columns.push(r.c);
    }
  } else if (dialect === 'postgres') {
    const { rows } = await knex.raw<{ rows: { t: string; i: string; u: boolean; c: string }[] }>(
      `SELECT t.relname AS t, i.relname AS i, ix.indisunique AS u, a.attname AS c
         FROM pg_index ix
         JOIN pg_class i ON i.oid = ix.indexrelid
         JOIN pg_class t ON t.oid = ix.indrelid
         JOIN LATERAL unnest(ix.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
        WHERE t.relnamespace = 'public'::regnamespace AND NOT ix.indisprimary
        ORDER BY t.relname, i.relname, k.ord`,
    );
    for (const r of rows) (out[r.i] ??= { table: r.t, columns: [], unique: r.u }).columns.push(r.c);
  } else {
    const indexes = await knex.raw<{ name: string; tbl_name: string }[]>(
      `SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex_%'`,
    );
    for (const idx of indexes) {
      const cols = await knex.raw<{ name: string }[]>(`PRAGMA index_info(${JSON.stringify(idx.name)})`);
      const list = await knex.raw<{ name: string; unique: number }[]>(
        `PRAGMA index_list(${JSON.stringify(idx.tbl_name)})`,
      );
      out[idx.name] = {
        table: idx.tbl_name,
        columns: cols.map((c) => c.name),
        unique: list.find((l) => l.name === idx.name)?.unique === 1,
      };
    }
  }
  return out;
}

async function readPrimaryKey(knex: Knex, dialect: Dialect, table: string): Promise<string[]> {
  if (dialect === 'mysql') {
    const rows = (
      await knex.raw<[{ c: string }[]]>(
        `SELECT column_name AS c FROM information_schema.statistics
        WHERE table_schema = DATABASE() AND table_name = ? AND index_name = 'PRIMARY' ORDER BY seq_in_index`,
        [table],
      )
    )[0]!;
    return rows.map((r) => r.c);
  }
  if (dialect === 'postgres') {
    const { rows } = await knex.raw<{ rows: { c: string }[] }>(
      `SELECT a.attname AS c FROM pg_index ix
         JOIN LATERAL unnest(ix.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
         JOIN pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.attnum
        WHERE ix.indrelid = ?::regclass AND ix.indisprimary ORDER BY k.ord`,
      [table],
    );
    return rows.map((r) => r.c);
  }
  const cols = await knex.raw<{ name: string; pk: number }[]>(`PRAGMA table_info(${JSON.stringify(table)})`);
  return cols
    .filter((c) => c.pk > 0)
    .sort((a, b) => a.pk - b.pk)
    .map((c) => c.name);
}

describeEachDatabase('store migrations', (db) => {
  it('a fresh database is reported outdated, and a verifying boot fails fast with SCHEMA_OUTDATED', async () => {
    const status = await schemaStatus(db().knex);
    expect(status.map((s) => s.name)).to.deep.equal(['matssocket', 'mats']);
    expect(status[0]!.pending).to.deep.equal([
      '20250601000000_create_store_tables',
      '20261207000000_create_node_table',
      '20261208000000_add_node_reply_queue',
    ]);
    await expectRejection(verifySchemaLatest(db().knex), DataAccessError, ErrorCode.SCHEMA_OUTDATED);
    const store = new SqlClusterStore(db().knex, { nodeName: 'n', migrate: false });
    await expectRejection(store.boot(), DataAccessError, ErrorCode.SCHEMA_OUTDATED);
    expect(await db().knex.schema.hasTable('knex_migrations_matssocket')).to.be.false;
  });

  it('migrates up with every table, primary key and named index of docs/store.md section 4', async () => {
    const [res] = await migrateLatest(db().knex, storeMigrationSets);
    expect(res!.applied).to.deep.equal([
      '20250601000000_create_store_tables',
      '20261207000000_create_node_table',
      '20261208000000_add_node_reply_queue',
    ]);
    for (const t of [...TABLES_IN_CREATION_ORDER, 'mats_socket_node'] as const) {
      expect(await db().knex.schema.hasTable(t), t).to.be.true;
      expect(await readPrimaryKey(db().knex, db().dialect, t), `${t} PK`).to.deep.equal(EXPECTED_PKS[t]);
    }
    const indexes = await readIndexes(db().knex, db().dialect);
    for (const [name, expected] of Object.entries(EXPECTED_INDEXES)) {
      expect(indexes[name], name).to.deep.equal(expected);
    }
    expect((await migrateLatest(db().knex, storeMigrationSets))[0]!.applied).to.deep.equal([]);
  });

  it('uses the dialect’s column types (and utf8mb4_bin / InnoDB on MySQL)', async function () {
    const d = db().dialect;
    if (d === 'sqlite') this.skip();
    const q =
      d === 'mysql'
        ? `SELECT table_name AS t, column_name AS c, data_type AS dt, collation_name AS col
             FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name LIKE 'mats_socket_%'`
        : `SELECT table_name AS t, column_name AS c, data_type AS dt, collation_name AS col
             FROM information_schema.columns WHERE table_schema = 'public' AND table_name LIKE 'mats_socket_%'`;
    const raw: unknown = await db().knex.raw(q);
    const rows = (d === 'mysql' ? (raw as [unknown[]])[0] : (raw as { rows: unknown[] }).rows) as {
      t: string;
      c: string;
      dt: string;
      col: string | null;
    }[];
    const type = (t: string, c: string) => rows.find((r) => r.t === t && r.c === c)?.dt.toLowerCase();
    if (d === 'mysql') {
      expect(type('mats_socket_outbox', 'envelope')).to.equal('longtext');
      expect(type('mats_socket_outbox', 'message_binary')).to.equal('longblob');
      expect(type('mats_socket_outbox', 'stored_timestamp')).to.equal('bigint');
      expect(type('mats_socket_session', 'session_id')).to.equal('varchar');
      for (const r of rows.filter((x) => x.col !== null))
        expect(r.col, `${r.t}.${r.c}`).to.equal('utf8mb4_bin');
      const tables = (
        await db().knex.raw<[{ t: string; e: string; c: string }[]]>(
          `SELECT table_name AS t, engine AS e, table_collation AS c FROM information_schema.tables
          WHERE table_schema = DATABASE() AND table_name LIKE 'mats_socket_%'`,
        )
      )[0]!;
      expect(tables).to.have.length(8);
      for (const t of tables) expect([t.e, t.c], t.t).to.deep.equal(['InnoDB', 'utf8mb4_bin']);
    } else {
      expect(type('mats_socket_outbox', 'envelope')).to.equal('text');
      expect(type('mats_socket_outbox', 'message_binary')).to.equal('bytea');
      expect(type('mats_socket_outbox', 'id')).to.equal('bigint');
      expect(type('mats_socket_session', 'session_id')).to.equal('character varying');
    }
  });

  it('boot() verifies the schema when migrate is off, and deregisters every row of its node', async () => {
    await migrateLatest(db().knex); // both sets
    const nodeName = `boot-${runId}`;
    const before = new SqlClusterStore(db().knex, { nodeName, migrate: false });
    const mine = newSession();
    await before.registerNewSession(mine);
    const other = new SqlClusterStore(db().knex, { nodeName: `${nodeName}-other`, migrate: false });
    const theirs = newSession();
    await other.registerNewSession(theirs);

    const restarted = new SqlClusterStore(db().knex, { nodeName, migrate: false });
    await restarted.boot();
    await restarted.boot(); // idempotent
    expect(await restarted.getCurrentRegisteredNodeForSession(mine.sessionId)).to.equal(null);
    expect(await restarted.isSessionExists(mine.sessionId)).to.be.true;
    expect(await restarted.getCurrentRegisteredNodeForSession(theirs.sessionId)).to.not.equal(null);
    await restarted.close();
    await restarted.close();
  });

  it('boot() warns on MySQL when the knex sessions are not at READ COMMITTED', async function () {
    if (db().dialect !== 'mysql') this.skip();
    const warnings: object[] = [];
    const logger: Logger = {
      trace: () => {},
      debug: () => {},
      info: () => {},
      warn: (obj) => void warnings.push(obj),
      error: () => {},
      child: () => logger,
    };
    const good = new SqlClusterStore(db().knex, { nodeName: 'iso-ok', logger });
    await good.boot();
    expect(warnings).to.deep.equal([]);
    const plain = knexFactory({ client: 'mysql2', connection: db().url, pool: { min: 0, max: 1 } });
    try {
      await new SqlClusterStore(plain, { nodeName: 'iso-rr', logger }).boot();
      expect(warnings).to.deep.equal([{ isolation: 'REPEATABLE-READ' }]);
    } finally {
      await plain.destroy();
    }
  });

  it('migrates down (both sets) and up again', async () => {
    await migrateRollbackAll(db().knex);
    for (const t of TABLES_IN_CREATION_ORDER) expect(await db().knex.schema.hasTable(t), t).to.be.false;
    const status = await schemaStatus(db().knex);
    expect(status.every((s) => s.pending.length > 0)).to.be.true;
    const results = await migrateLatest(db().knex, defaultMigrationSets());
    expect(results.map((r) => r.applied.length > 0)).to.deep.equal([true, true]);
    expect(Object.keys(await readIndexes(db().knex, db().dialect))).to.include.members(
      Object.keys(EXPECTED_INDEXES),
    );
    await migrateRollbackAll(db().knex);
  });

  it('boot() with migrate: true migrates both sets itself', async () => {
    const store = new SqlClusterStore(db().knex, { nodeName: 'self-migrating', migrate: true });
    await store.boot();
    const status = await verifySchemaLatest(db().knex);
    expect(status.map((s) => s.pending)).to.deep.equal([[], []]);
    await migrateRollbackAll(db().knex);
  });
});

describe('SqlClusterStore.fromUrl()', () => {
  it('owns its knex: boot migrates an embedded SQLite (migrate defaults to true) and close destroys the pool', async () => {
    const store = SqlClusterStore.fromUrl('sqlite::memory:', { nodeName: 'embedded' });
    expect(store.options.migrate).to.be.true;
    await store.boot();
    await store.registerNewSession(newSession({ sessionId: 'x' }));
    expect(await store.isSessionExists('x')).to.be.true;
    await store.close();
    await store.close();
    await expectRejection(store.isSessionExists('x'), DataAccessError, ErrorCode.DATA_ACCESS);
  });
});
