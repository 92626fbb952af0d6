/**
 * Dev/ops knex configuration for the knex CLI, e.g.
 * `tsx node_modules/knex/bin/cli.js --knexfile knexfile.ts migrate:status`.
 *
 * - Database: `MATSSOCKET_DB_URL` (`mysql://…`, `mariadb://…`, `postgres://…`, `postgresql://…`, `sqlite:<file>`),
 *   default the embedded `sqlite:data/matssocket.sqlite`.
 * - Migrations: the explicit, in-code migration source (names without file extensions, so a database migrated from
 *   source stays valid for the compiled build) and its own table. The knex CLI handles one source at a time:
 *   `MATSSOCKET_MIGRATION_SET=mats` selects the Mats messaging layer's set instead of the MatsSocket store's.
 *   `npm run migrate` applies both.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Knex } from 'knex';
import { parseDatabaseUrl } from './src/store/database.ts';
import { defaultMigrationSets } from './src/store/migrate.ts';

const url = process.env.MATSSOCKET_DB_URL?.trim() || 'sqlite:data/matssocket.sqlite';
const db = parseDatabaseUrl(url, 'MATSSOCKET_DB_URL');
const setName = process.env.MATSSOCKET_MIGRATION_SET ?? 'matssocket';
const set = defaultMigrationSets().find((s) => s.name === setName);
if (!set) throw new Error(`MATSSOCKET_MIGRATION_SET must be 'matssocket' or 'mats', got '${setName}'`);

function connection(): Knex.StaticConnectionConfig {
  switch (db.dialect) {
    case 'mysql':
      return { uri: db.target, charset: 'utf8mb4', supportBigNumbers: true };
    case 'postgres':
      return { connectionString: db.target };
    case 'sqlite':
      if (db.target !== ':memory:') mkdirSync(dirname(db.target), { recursive: true });
      return { filename: db.target };
  }
}

const config: Knex.Config = {
  client: { mysql: 'mysql2', postgres: 'pg', sqlite: 'better-sqlite3' }[db.dialect],
  connection: connection(),
  useNullAsDefault: db.dialect === 'sqlite',
  pool: db.dialect === 'sqlite' ? { min: 1, max: 1 } : { min: 0, max: 2 },
  migrations: { migrationSource: set.source, tableName: set.tableName },
};

export default config;
