/**
 * The two migration sources, each with its own migration table so applications can keep their own knex
 * migrations in the same database (`docs/store.md` 7):
 * - `matsSocketMigrations` (table `knex_migrations_matssocket`): the MatsSocket store's tables;
 * - `matsMigrations` (table `knex_migrations_mats`): the Mats messaging layer's inbox and outbox.
 */
export { matsSocketMigrations } from './matssocket/index.ts';
export { matsMigrations } from './mats/index.ts';
export { listMigrationSource, type Migration } from './migrationSource.ts';
