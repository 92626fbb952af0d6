import type { Knex } from 'knex';
import { matsMigrations, matsSocketMigrations } from '../../migrations/index.ts';
import { DataAccessError, ErrorCode } from '../errors.ts';
import { withMigrationLock } from './migrationLock.ts';
import { toDataAccessError } from './sqlErrors.ts';

/** One knex migration source and the table that records its applied migrations. */
export interface MigrationSet {
  /** A label for logs and messages, e.g. `matssocket`. */
  name: string;
  source: Knex.MigrationSource<unknown>;
  tableName: string;
}

/** What migrating one set did. */
export interface MigrationSetResult {
  name: string;
  tableName: string;
  /** Names of the migrations applied by this call (empty: it was already at the latest). */
  applied: string[];
}

/** A set's schema state. */
export interface MigrationSetStatus {
  name: string;
  tableName: string;
  /** Migrations of the source not yet applied, in order. */
  pending: string[];
  /** Applied migrations the source does not know (the database is newer than this code). */
  unknown: string[];
}

/** Table names of the two standard sets; see {@link defaultMigrationSets}. */
export interface MigrationTableNames {
  /** @default 'knex_migrations_matssocket' */
  migrationsTableName?: string;
  /** @default 'knex_migrations_mats' */
  matsMigrationsTableName?: string;
}

/**
 * The two migration sources the database needs (`docs/store.md` 7), each with its own migration table so applications
 * can keep their own knex migrations in the same database: the MatsSocket store, then the Mats messaging layer.
 */
export function defaultMigrationSets(tables: MigrationTableNames = {}): MigrationSet[] {
  return [
    {
      name: 'matssocket',
      source: matsSocketMigrations,
      tableName: tables.migrationsTableName ?? 'knex_migrations_matssocket',
    },
    {
      name: 'mats',
      source: matsMigrations,
      tableName: tables.matsMigrationsTableName ?? 'knex_migrations_mats',
    },
  ];
}

/**
 * Applies every pending migration of each set, in order. Processes migrating the same database at the same time
 * (nodes booting together) take turns through a database lock ({@link withMigrationLock}): the first applies the
 * migrations, the others then find nothing pending. @throws DataAccessError with the driver/knex error as `cause`.
 */
export function migrateLatest(
  knex: Knex,
  sets: readonly MigrationSet[] = defaultMigrationSets(),
): Promise<MigrationSetResult[]> {
  return withMigrationLock(knex, () => migrateSets(knex, sets));
}

async function migrateSets(knex: Knex, sets: readonly MigrationSet[]): Promise<MigrationSetResult[]> {
  const results: MigrationSetResult[] = [];
  for (const set of sets) {
    try {
      const [, applied] = (await knex.migrate.latest({
        migrationSource: set.source,
        tableName: set.tableName,
      })) as [number, string[]];
      results.push({ name: set.name, tableName: set.tableName, applied });
    } catch (err) {
      throw toDataAccessError(err, `migrating '${set.name}' (table ${set.tableName})`);
    }
  }
  return results;
}

/** Rolls back every applied migration of each set, last set first (tests and ops). */
export async function migrateRollbackAll(
  knex: Knex,
  sets: readonly MigrationSet[] = defaultMigrationSets(),
): Promise<void> {
  for (const set of [...sets].reverse()) {
    try {
      await knex.migrate.rollback({ migrationSource: set.source, tableName: set.tableName }, true);
    } catch (err) {
      throw toDataAccessError(err, `rolling back '${set.name}' (table ${set.tableName})`);
    }
  }
}

/**
 * Reads which migrations of each set are pending, without changing anything (a missing migration table means
 * everything is pending).
 */
export async function schemaStatus(
  knex: Knex,
  sets: readonly MigrationSet[] = defaultMigrationSets(),
): Promise<MigrationSetStatus[]> {
  const statuses: MigrationSetStatus[] = [];
  for (const set of sets) {
    try {
      const known = await set.source.getMigrations([]);
      const names = known.map((m) => set.source.getMigrationName(m));
      const applied = (await knex.schema.hasTable(set.tableName))
        ? (await knex(set.tableName).select<{ name: string }[]>('name')).map((r) => r.name)
        : [];
      const appliedSet = new Set(applied);
      const knownSet = new Set(names);
      statuses.push({
        name: set.name,
        tableName: set.tableName,
        pending: names.filter((n) => !appliedSet.has(n)),
        unknown: applied.filter((n) => !knownSet.has(n)),
      });
    } catch (err) {
      throw toDataAccessError(err, `reading the schema state of '${set.name}' (table ${set.tableName})`);
    }
  }
  return statuses;
}

/**
 * Fails fast unless every set is at its latest migration.
 * @throws DataAccessError with code `SCHEMA_OUTDATED` naming the pending migrations.
 */
export async function verifySchemaLatest(
  knex: Knex,
  sets: readonly MigrationSet[] = defaultMigrationSets(),
): Promise<MigrationSetStatus[]> {
  const statuses = await schemaStatus(knex, sets);
  const outdated = statuses.filter((s) => s.pending.length > 0);
  if (outdated.length > 0) {
    const detail = outdated.map((s) => `${s.name} (${s.tableName}): ${s.pending.join(', ')}`).join('; ');
    throw new DataAccessError(
      `the database schema is not at the latest migration; pending: ${detail}. Run 'npm run migrate' or enable 'migrate'`,
      { code: ErrorCode.SCHEMA_OUTDATED },
    );
  }
  return statuses;
}
