import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Knex } from 'knex';
import { createDatabase, type Dialect } from '../src/store/database.ts';
import { failureCount, keepForInspection, runId } from './runState.ts';
import { requireService, serviceUrls } from './services.ts';

/** The databases every store and Mats test suite runs against. */
export const testDialects: readonly Dialect[] = ['sqlite', 'mysql', 'postgres'];

export const dialectLabel: Record<Dialect, string> = {
  sqlite: 'SQLite',
  mysql: 'MariaDB',
  postgres: 'PostgreSQL',
};

export interface TestDatabase {
  dialect: Dialect;
  /** A `MATSSOCKET_DB_URL`-style URL of this database. */
  url: string;
  /** A knex instance on it (owned by the TestDatabase; destroyed by `drop()`). */
  knex: Knex;
  /** Creates another knex instance on the same database (e.g. a second node); destroyed by `drop()`. */
  connect(): Knex;
  /** Destroys the knex instances, then drops the database if every test so far passed. Idempotent. */
  drop(): Promise<void>;
}

let counter = 0;

/**
 * Creates an empty, isolated database for one suite: MariaDB and PostgreSQL get `ms_<runId>_<n>`, SQLite a
 * temporary file (shared by every `connect()`, so several nodes can share it). Kept only if a test failed while it was in use (or with
 * `KEEP_TEST_DB=1`) for inspection. `serverUrl`: another server than the shared one of the dialect (e.g. a
 * private MariaDB's `url`, harness/PrivateMariaDb.ts).
 */
export async function createTestDatabase(dialect: Dialect, serverUrl?: string): Promise<TestDatabase> {
  const name = `ms_${runId}_${++counter}`;
  const failuresAtCreation = failureCount();
  const instances: Knex[] = [];
  let url: string;
  let dropDatabase: () => Promise<void>;

  if (dialect === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), `${name}-`));
    url = `sqlite:${join(dir, 'test.sqlite')}`;
    dropDatabase = () => Promise.resolve(rmSync(dir, { recursive: true, force: true }));
  } else {
    const adminUrl = serverUrl ?? (dialect === 'mysql' ? serviceUrls.mariadb : serviceUrls.postgres);
    const admin = createDatabase(adminUrl, { poolMax: 1 });
    try {
      await admin.raw(dialect === 'mysql' ? `CREATE DATABASE \`${name}\`` : `CREATE DATABASE "${name}"`);
    } finally {
      await admin.destroy();
    }
    const u = new URL(adminUrl);
    u.pathname = `/${name}`;
    url = u.toString();
    dropDatabase = async () => {
      const a = createDatabase(adminUrl, { poolMax: 1 });
      try {
        await a.raw(
          dialect === 'mysql'
            ? `DROP DATABASE IF EXISTS \`${name}\``
            : `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`,
        );
      } finally {
        await a.destroy();
      }
    };
  }

  const connect = (): Knex => {
    const k = createDatabase(url, { poolMax: 8, connectTimeoutMs: 5000 });
    instances.push(k);
    return k;
  };
  let dropped: Promise<void> | undefined;
  return {
    dialect,
    url,
    knex: connect(),
    connect,
    drop() {
      dropped ??= (async () => {
        await Promise.all(instances.map((k) => k.destroy()));
        if (!keepForInspection(url, failuresAtCreation)) await dropDatabase();
      })();
      return dropped;
    },
  };
}

/**
 * Declares `describe(<label>)` blocks for each test dialect, each with its own database (created in `before`,
 * dropped in `after`), skipping or failing per `requireService` when the server is unreachable.
 */
export function describeEachDatabase(title: string, body: (db: () => TestDatabase) => void): void {
  for (const dialect of testDialects) {
    describe(`${title} [${dialectLabel[dialect]}]`, function () {
      let db: TestDatabase | undefined;
      before(async function () {
        if (dialect === 'mysql') await requireService(this, 'mariadb');
        if (dialect === 'postgres') await requireService(this, 'postgres');
        db = await createTestDatabase(dialect);
      });
      after(async () => {
        await db?.drop();
      });
      body(() => {
        if (!db) throw new Error('test database not created (before hook failed?)');
        return db;
      });
    });
  }
}
