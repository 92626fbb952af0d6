import type { Knex } from 'knex';
import { dialectOf } from '../../src/store/database.ts';
import type { Migration } from '../migrationSource.ts';

/**
 * Migration 2 of the MatsSocket store: one row per running node name, so that a node cannot start under the name of
 * a node that is alive (it would deregister that node's live sessions at boot). Released: never edit.
 */
export const createNodeTable: Migration = {
  async up(knex: Knex) {
    const dialect = dialectOf(knex);
    await knex.schema.createTable('mats_socket_node', (t) => {
      if (dialect === 'mysql') {
        t.engine('InnoDB');
        t.charset('utf8mb4');
        t.collate('utf8mb4_bin');
      }
      if (dialect === 'sqlite') {
        t.text('nodename').notNullable();
        t.text('incarnation').notNullable();
        t.integer('started_timestamp').notNullable();
        t.integer('liveliness_timestamp').notNullable();
      } else {
        t.string('nodename', 255).notNullable();
        t.string('incarnation', 64).notNullable();
        t.bigInteger('started_timestamp').notNullable();
        t.bigInteger('liveliness_timestamp').notNullable();
      }
      t.primary(['nodename'], 'pk_msn');
    });
  },

  async down(knex: Knex) {
    await knex.schema.dropTableIfExists('mats_socket_node');
  },
};
