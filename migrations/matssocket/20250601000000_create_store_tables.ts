import type { Knex } from 'knex';
import { dialectOf, type Dialect } from '../../src/store/database.ts';
import type { Migration } from '../migrationSource.ts';

/**
 * Migration 1 of the MatsSocket store (`docs/store.md` 4): the seven tables with every index, named exactly as that section
 * names them. Released: never edit; add a new migration instead.
 */

/** Column builders for the logical types of `docs/store.md` 4, per dialect. */
function columns(t: Knex.CreateTableBuilder, dialect: Dialect) {
  return {
    /** id64: VARCHAR(64) / TEXT */
    id64: (name: string) => (dialect === 'sqlite' ? t.text(name) : t.string(name, 64)),
    /** str(n): VARCHAR(n) / TEXT */
    str: (name: string, n: number) => (dialect === 'sqlite' ? t.text(name) : t.string(name, n)),
    /** longtext: LONGTEXT / TEXT / TEXT (MySQL TEXT holds only 64 KiB; messages can be 50 MiB) */
    longtext: (name: string) => t.text(name, 'longtext'),
    /** blob: LONGBLOB / BYTEA / BLOB */
    blob: (name: string) => (dialect === 'mysql' ? t.specificType(name, 'LONGBLOB') : t.binary(name)),
    /** ms: BIGINT / BIGINT / INTEGER */
    ms: (name: string) => (dialect === 'sqlite' ? t.integer(name) : t.bigInteger(name)),
  };
}

/** InnoDB, utf8mb4 and a binary collation on MySQL/MariaDB: ids are case-sensitive ('aB' ≠ 'Ab'). */
function mysqlTableOptions(t: Knex.CreateTableBuilder, dialect: Dialect): void {
  if (dialect !== 'mysql') return;
  t.engine('InnoDB');
  t.charset('utf8mb4');
  t.collate('utf8mb4_bin');
}

export const TABLES_IN_CREATION_ORDER = [
  'mats_socket_session',
  'mats_socket_inbox',
  'mats_socket_outbox',
  'mats_socket_request_out',
  'mats_socket_dlq',
  'mats_socket_topic',
  'mats_socket_topic_log',
] as const;

export const createStoreTables: Migration = {
  async up(knex) {
    const dialect = dialectOf(knex);

    await knex.schema.createTable('mats_socket_session', (t) => {
      mysqlTableOptions(t, dialect);
      const c = columns(t, dialect);
      c.id64('session_id').notNullable();
      c.id64('connection_id').nullable();
      c.str('nodename', 255).nullable();
      c.str('user_id', 255).notNullable();
      c.str('client_lib', 1024).notNullable();
      c.str('app_name', 255).notNullable();
      c.str('app_version', 255).notNullable();
      c.ms('created_timestamp').notNullable();
      c.ms('liveliness_timestamp').notNullable();
      t.primary(['session_id'], 'pk_mss');
      t.index(['user_id'], 'ix_mss_user');
      t.index(['nodename'], 'ix_mss_node');
      t.index(['liveliness_timestamp'], 'ix_mss_liveliness');
      t.index(['app_name', 'app_version'], 'ix_mss_app');
    });

    await knex.schema.createTable('mats_socket_inbox', (t) => {
      mysqlTableOptions(t, dialect);
      const c = columns(t, dialect);
      c.id64('session_id').notNullable();
      c.str('cmid', 255).notNullable();
      c.ms('stored_timestamp').notNullable();
      c.longtext('full_envelope').nullable();
      c.blob('message_binary').nullable();
      t.primary(['session_id', 'cmid'], 'pk_msi');
      t.index(['stored_timestamp'], 'ix_msi_stored');
    });

    await knex.schema.createTable('mats_socket_outbox', (t) => {
      mysqlTableOptions(t, dialect);
      const c = columns(t, dialect);
      t.bigIncrements('id', { primaryKey: true });
      c.id64('session_id').notNullable();
      c.id64('smid').notNullable();
      c.str('cmid', 255).nullable();
      c.longtext('trace_id').notNullable();
      c.str('type', 16).notNullable();
      c.ms('request_timestamp').nullable();
      c.ms('stored_timestamp').notNullable();
      c.ms('attempt_timestamp').nullable();
      t.integer('delivery_count').notNullable().defaultTo(0);
      c.longtext('envelope').notNullable();
      c.longtext('message_text').nullable();
      c.blob('message_binary').nullable();
      t.unique(['session_id', 'smid'], { indexName: 'ux_mso_smid' });
      t.index(['session_id', 'attempt_timestamp', 'id'], 'ix_mso_fetch');
      t.index(['stored_timestamp'], 'ix_mso_stored');
    });

    await knex.schema.createTable('mats_socket_request_out', (t) => {
      mysqlTableOptions(t, dialect);
      const c = columns(t, dialect);
      c.id64('session_id').notNullable();
      c.id64('smid').notNullable();
      c.ms('request_timestamp').notNullable();
      c.ms('expires_timestamp').notNullable();
      c.str('reply_terminator_id', 255).notNullable();
      c.str('client_endpoint_id', 255).notNullable();
      c.longtext('trace_id').notNullable();
      c.longtext('correlation_text').nullable();
      c.blob('correlation_binary').nullable();
      t.primary(['session_id', 'smid'], 'pk_msr');
      t.index(['expires_timestamp'], 'ix_msr_expires');
    });

    await knex.schema.createTable('mats_socket_dlq', (t) => {
      mysqlTableOptions(t, dialect);
      const c = columns(t, dialect);
      t.bigIncrements('id', { primaryKey: true });
      c.id64('session_id').notNullable();
      c.id64('smid').notNullable();
      c.str('user_id', 255).nullable();
      c.str('cmid', 255).nullable();
      c.str('type', 16).notNullable();
      c.longtext('trace_id').notNullable();
      c.longtext('envelope').notNullable();
      c.longtext('message_text').nullable();
      c.blob('message_binary').nullable();
      t.integer('delivery_count').notNullable();
      c.str('reason', 64).notNullable();
      c.longtext('description').nullable();
      c.ms('original_stored_timestamp').notNullable();
      c.ms('last_attempt_timestamp').nullable();
      c.ms('dead_lettered_timestamp').notNullable();
      c.str('dead_lettered_by_node', 255).notNullable();
      t.index(['session_id', 'id'], 'ix_msd_session');
      t.index(['user_id', 'id'], 'ix_msd_user');
      t.index(['dead_lettered_timestamp'], 'ix_msd_time');
    });

    await knex.schema.createTable('mats_socket_topic', (t) => {
      mysqlTableOptions(t, dialect);
      const c = columns(t, dialect);
      c.str('topic_id', 256).notNullable();
      c.str('epoch', 16).notNullable();
      t.bigInteger('last_seq').notNullable();
      c.ms('last_published_timestamp').notNullable();
      t.primary(['topic_id'], 'pk_mst');
      t.index(['last_published_timestamp'], 'ix_mst_published');
    });

    await knex.schema.createTable('mats_socket_topic_log', (t) => {
      mysqlTableOptions(t, dialect);
      const c = columns(t, dialect);
      c.str('topic_id', 256).notNullable();
      t.bigInteger('seq').notNullable();
      c.longtext('trace_id').notNullable();
      c.longtext('envelope').notNullable();
      c.longtext('message_text').nullable();
      c.ms('stored_timestamp').notNullable();
      t.primary(['topic_id', 'seq'], 'pk_mstl');
      t.index(['stored_timestamp'], 'ix_mstl_stored');
    });
  },

  async down(knex) {
    for (const table of [...TABLES_IN_CREATION_ORDER].reverse()) {
      await knex.schema.dropTableIfExists(table);
    }
  },
};
