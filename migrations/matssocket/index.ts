import { listMigrationSource } from '../migrationSource.ts';
import { createStoreTables } from './20250601000000_create_store_tables.ts';
import { createNodeTable } from './20261207000000_create_node_table.ts';
import { addNodeReplyQueue } from './20261208000000_add_node_reply_queue.ts';

/** The MatsSocket store's migrations, in order. Released migrations are never edited; add new ones. */
export const matsSocketMigrations = listMigrationSource([
  ['20250601000000_create_store_tables', createStoreTables],
  ['20261207000000_create_node_table', createNodeTable],
  ['20261208000000_add_node_reply_queue', addNodeReplyQueue],
]);
