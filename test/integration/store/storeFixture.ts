import { expect } from 'chai';
import type { Knex } from 'knex';
import type { ErrorCode } from '../../../src/errors.ts';
import { defaultMigrationSets, migrateLatest } from '../../../src/store/migrate.ts';
import { SqlClusterStore } from '../../../src/store/SqlClusterStore.ts';
import type { StoreOptions } from '../../../src/store/StoreOptions.ts';
import type { SessionRegistrationInput } from '../../../src/store/storeTypes.ts';
import { randomId } from '../../../src/util/ids.ts';
import type { TestDatabase } from '../../../harness/databases.ts';
import { runId } from '../../../harness/runState.ts';

/** Only the MatsSocket store's set: these suites test the store, not the Mats layer's migrations. */
export const storeMigrationSets = defaultMigrationSets().slice(0, 1);

/** A settable clock for the store's `now` option. */
export class TestClock {
  value = 1_700_000_000_000;
  now = (): number => this.value;
  advance(ms: number): number {
    this.value += ms;
    return this.value;
  }
}

export interface StoreFixture {
  /** The default store (node A) on the database's main knex. */
  readonly store: SqlClusterStore;
  readonly clock: TestClock;
  readonly db: TestDatabase;
  /** Another store (e.g. node B), on `knex` (default: the main knex), sharing the clock. */
  newStore(options?: Partial<StoreOptions>, knex?: Knex): SqlClusterStore;
  /**
   * A knex for a concurrent racer: a separate instance (own connections) on MariaDB/PostgreSQL. On SQLite the
   * shared single-connection one, as deployed: better-sqlite3 is synchronous, so a second connection waiting in
   * SQLite's busy handler would block the event loop and stall the lock holder until `busy_timeout` expires.
   */
  racerKnex(): Knex;
}

/**
 * Registers a `before` hook (after the database's own) that migrates the store tables and creates store A.
 * Call inside a `describeEachDatabase` body.
 */
export function useStoreFixture(db: () => TestDatabase, options: Partial<StoreOptions> = {}): StoreFixture {
  const clock = new TestClock();
  let store: SqlClusterStore | undefined;
  const fixture: StoreFixture = {
    get store() {
      if (!store) throw new Error('store fixture not ready (before hook failed?)');
      return store;
    },
    clock,
    get db() {
      return db();
    },
    newStore(more = {}, knex = db().knex) {
      return new SqlClusterStore(knex, {
        nodeName: `node-${runId}-B`,
        now: clock.now,
        migrate: false,
        ...options,
        ...more,
      });
    },
    racerKnex() {
      return db().dialect === 'sqlite' ? db().knex : db().connect();
    },
  };
  before(async function () {
    await migrateLatest(db().knex, storeMigrationSets);
    store = new SqlClusterStore(db().knex, {
      nodeName: `node-${runId}-A`,
      now: clock.now,
      migrate: false,
      ...options,
    });
  });
  return fixture;
}

/** A fresh random session id (16 chars, both cases, like the server's). */
export function sid(): string {
  return randomId(16);
}

/** Registration input for a new session with random ids. */
export function newSession(over: Partial<SessionRegistrationInput> = {}): SessionRegistrationInput {
  return {
    sessionId: sid(),
    userId: `user-${randomId(6)}`,
    connectionId: randomId(16),
    clientLib: 'MatsSocket.ts,1.0.0',
    appName: 'TestApp',
    appVersion: '1.2.3',
    ...over,
  };
}

/** Asserts that `promise` rejects with an instance of `cls` whose `code` is `code`; returns the error. */
export async function expectRejection<E extends Error>(
  promise: Promise<unknown>,
  cls: abstract new (...args: never[]) => E,
  code?: ErrorCode,
): Promise<E> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  expect(caught, 'expected a rejection').to.be.instanceOf(cls);
  if (code !== undefined) expect(caught).to.have.property('code', code);
  return caught as E;
}
