import type { Knex } from 'knex';
import type { Migration } from '../migrationSource.ts';

/**
 * Migration 3 of the MatsSocket store: the node reply queue each running node holds (`reply_queue`, 0 based; NULL:
 * none), so that a booting node takes one no live node holds (docs/store.md §4.8). Released: never edit.
 */
export const addNodeReplyQueue: Migration = {
  async up(knex: Knex) {
    await knex.schema.alterTable('mats_socket_node', (t) => {
      t.integer('reply_queue').nullable();
    });
  },

  async down(knex: Knex) {
    await knex.schema.alterTable('mats_socket_node', (t) => {
      t.dropColumn('reply_queue');
    });
  },
};
