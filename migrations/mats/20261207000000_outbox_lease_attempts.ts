import type { Knex } from 'knex';
import type { Migration } from '../migrationSource.ts';

/**
 * Per-row sweeper state of `mats_outbox`, so one unpublishable row no longer decides its batch's fate and no
 * database transaction spans a broker wait:
 * - `attempts`: publishes of this row that failed because of the row itself (returned, nacked, refused by the
 *   broker); at `outboxMaxAttempts` the row is dead-lettered;
 * - `claimed_by` / `claimed_until` (epoch ms): the sweeper's lease, committed before it publishes; a row whose
 *   lease has passed is taken again (at-least-once; receivers de-duplicate by matsMessageId);
 * - `last_error`: a short reason for the last failure (error code and message), for operators.
 * Plain nullable/defaulted columns: the same ALTER works on SQLite, MariaDB and PostgreSQL.
 */
export const outboxLeaseAttempts: Migration = {
  async up(knex: Knex): Promise<void> {
    await knex.schema.alterTable('mats_outbox', (t) => {
      t.integer('attempts').notNullable().defaultTo(0);
      t.string('claimed_by', 255).nullable();
      t.bigInteger('claimed_until').nullable();
      t.string('last_error', 1000).nullable();
    });
  },
  async down(knex: Knex): Promise<void> {
    await knex.schema.alterTable('mats_outbox', (t) => {
      t.dropColumn('last_error');
      t.dropColumn('claimed_until');
      t.dropColumn('claimed_by');
      t.dropColumn('attempts');
    });
  },
};
