/**
 * `npm run migrate` (`docs/store.md` 7): applies both migration sources (the MatsSocket store's and the Mats messaging
 * layer's, each with its own migration table) to the database named by `MATSSOCKET_DB_URL`:
 * `mysql://…` / `mariadb://…`, `postgres://…` / `postgresql://…` or `sqlite:<file>`. Unset, the embedded default
 * `sqlite:data/matssocket.sqlite` (its folder is created if missing).
 *
 * `npm run migrate -- --status` only prints what is applied and pending. Exit code 0 on success, 1 on any error
 * (with a one-line message; passwords are redacted).
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { MatsSocketError } from '../errors.ts';
import { createDatabase, parseDatabaseUrl, redactUrl } from '../store/database.ts';
import { defaultMigrationSets, migrateLatest, schemaStatus } from '../store/migrate.ts';

/** The embedded default database when `MATSSOCKET_DB_URL` is unset. */
export const DEFAULT_DB_URL = 'sqlite:data/matssocket.sqlite';

async function main(argv: readonly string[]): Promise<number> {
  const statusOnly = argv.includes('--status');
  const unknown = argv.filter((a) => a !== '--status');
  if (unknown.length > 0) {
    console.error(`migrate: unknown argument(s) ${unknown.join(' ')}; usage: migrate [--status]`);
    return 2;
  }
  const url = process.env.MATSSOCKET_DB_URL?.trim() || DEFAULT_DB_URL;
  const shown = redactUrl(url);
  try {
    const parsed = parseDatabaseUrl(url, 'MATSSOCKET_DB_URL');
    if (parsed.dialect === 'sqlite' && parsed.target !== ':memory:') {
      mkdirSync(dirname(parsed.target), { recursive: true });
    }
    const knex = createDatabase(parsed, { poolMax: 2, connectTimeoutMs: 10_000 });
    try {
      const sets = defaultMigrationSets();
      if (statusOnly) {
        for (const s of await schemaStatus(knex, sets)) {
          const state = s.pending.length === 0 ? 'up to date' : `pending: ${s.pending.join(', ')}`;
          console.log(`migrate: ${shown} ${s.name} (${s.tableName}): ${state}`);
        }
        return 0;
      }
      for (const r of await migrateLatest(knex, sets)) {
        const what =
          r.applied.length === 0 ? 'already at the latest migration' : `applied ${r.applied.join(', ')}`;
        console.log(`migrate: ${shown} ${r.name} (${r.tableName}): ${what}`);
      }
      return 0;
    } finally {
      await knex.destroy();
    }
  } catch (err) {
    const code = err instanceof MatsSocketError ? ` [${err.code}]` : '';
    const message = err instanceof Error ? err.message : String(err);
    console.error(`migrate: failed on ${shown}${code}: ${redactUrl(message)}`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
