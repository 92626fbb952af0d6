import { createRequire } from 'node:module';
import { ConfigError } from '../errors.ts';

/**
 * The driver package of each dialect (keyed like `Dialect` of database.ts, which imports this module). They are optional peer dependencies of the package (as with knex): an
 * application installs the one it uses, and a PostgreSQL deployment does not compile SQLite's native addon.
 */
export const DRIVER_PACKAGES = {
  mysql: 'mysql2',
  postgres: 'pg',
  sqlite: 'better-sqlite3',
} as const;

/**
 * Loads the dialect's driver (all three are CommonJS, so `require` keeps {@link createDatabase} synchronous).
 * Fails at once with a ConfigError naming the package to install, not at the first query with knex's message.
 *
 * @param from where to resolve the driver from (a file URL); the default is this package.
 */
export function loadDatabaseDriver(
  dialect: keyof typeof DRIVER_PACKAGES,
  from: string = import.meta.url,
): unknown {
  const name = DRIVER_PACKAGES[dialect];
  try {
    return createRequire(from)(name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw err;
    const error = new ConfigError(
      'db',
      `the ${dialect} database needs the '${name}' package: npm install ${name}`,
    );
    error.cause = err;
    throw error;
  }
}
