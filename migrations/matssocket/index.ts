import { listMigrationSource } from '../migrationSource.ts';

/** The MatsSocket store's migrations, in order. Released migrations are never edited; add new ones. */
export const matsSocketMigrations = listMigrationSource([]);
