import type { Knex } from 'knex';
import { dialectOf } from '../../src/store/database.ts';
import type { Migration } from '../migrationSource.ts';

/**
 * The Mats layer's inbox (de-duplication of incoming messages by matsMessageId) and transactional outbox
 * (`docs/mats-semantics.md` 2.3). Portable across MySQL/MariaDB, PostgreSQL and SQLite; every query is index-backed.
 */
export const createMatsInboxOutbox: Migration = {
  async up(knex: Knex): Promise<void> {
    const dialect = dialectOf(knex);
    await knex.schema.createTable('mats_inbox', (t) => {
      t.string('stage_id', 255).notNullable();
      t.string('mats_message_id', 255).notNullable();
      t.bigInteger('received_timestamp').notNullable();
      t.primary(['stage_id', 'mats_message_id'], 'mats_inbox_pk');
      t.index(['received_timestamp'], 'mats_inbox_received_idx');
    });
    await knex.schema.createTable('mats_outbox', (t) => {
      t.bigIncrements('id').primary();
      t.string('mats_message_id', 255).notNullable();
      t.string('cause_message_id', 255).nullable();
      t.string('target_kind', 8).notNullable();
      t.string('target_name', 255).notNullable();
      t.text('properties').notNullable();
      t.text('headers', 'mediumtext').notNullable();
      // MySQL's BLOB holds 64 KiB only; bodies can be megabytes.
      t.specificType(
        'body',
        dialect === 'mysql' ? 'LONGBLOB' : dialect === 'postgres' ? 'BYTEA' : 'BLOB',
      ).notNullable();
      t.bigInteger('created_timestamp').notNullable();
      t.unique(['mats_message_id'], { indexName: 'mats_outbox_msgid_uq' });
      t.index(['created_timestamp'], 'mats_outbox_created_idx');
      t.index(['cause_message_id'], 'mats_outbox_cause_idx');
    });
  },
  async down(knex: Knex): Promise<void> {
    await knex.schema.dropTableIfExists('mats_outbox');
    await knex.schema.dropTableIfExists('mats_inbox');
  },
};
