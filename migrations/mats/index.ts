import { listMigrationSource } from '../migrationSource.ts';
import { createMatsInboxOutbox } from './20250601000000_create_mats_inbox_outbox.ts';
import { outboxLeaseAttempts } from './20261207000000_outbox_lease_attempts.ts';

/** Table knex records the Mats layer's migrations in (separate from the application's and MatsSocket's). */
export const MATS_MIGRATIONS_TABLE = 'knex_migrations_mats';

/** The Mats messaging layer's migrations, in order. Released migrations are never edited; add new ones. */
export const matsMigrations = listMigrationSource([
  ['20250601000000_create_mats_inbox_outbox', createMatsInboxOutbox],
  ['20261207000000_outbox_lease_attempts', outboxLeaseAttempts],
]);
