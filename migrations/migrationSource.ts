import type { Knex } from 'knex';

/** One migration module: `up` and a working `down`. */
export interface Migration {
  up(knex: Knex): Promise<void>;
  down(knex: Knex): Promise<void>;
}

/**
 * An explicit, ordered knex migration source. Names are recorded without file extensions, so a database migrated
 * from TypeScript (tsx) stays valid when run from the compiled output, and an embedded database can migrate itself
 * without touching the filesystem (`docs/store.md` 7).
 */
export function listMigrationSource(
  migrations: ReadonlyArray<readonly [name: string, migration: Migration]>,
): Knex.MigrationSource<string> {
  const byName = new Map(migrations);
  return {
    getMigrations: () => Promise.resolve(migrations.map(([name]) => name)),
    getMigrationName: (name) => name,
    getMigration: (name) => {
      const migration = byName.get(name);
      if (!migration) return Promise.reject(new Error(`unknown migration '${name}'`));
      return Promise.resolve(migration);
    },
  };
}
