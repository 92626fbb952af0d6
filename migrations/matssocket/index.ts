import { listMigrationSource } from '../migrationSource.ts';
import { createStoreTables } from './20250601000000_create_store_tables.ts';

/** The MatsSocket store's migrations, in order. Released migrations are never edited; add new ones. */
export const matsSocketMigrations = listMigrationSource([
  ['20250601000000_create_store_tables', createStoreTables],
]);
