import { listMigrationSource } from '../migrationSource.ts';

/** The Mats messaging layer's migrations, in order. Released migrations are never edited; add new ones. */
export const matsMigrations = listMigrationSource([]);
