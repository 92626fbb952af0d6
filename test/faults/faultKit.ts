import { createDatabase } from '../../src/store/database.ts';
import type { TestDatabase } from '../../harness/databases.ts';
import { serviceUrls } from '../../harness/services.ts';

/**
 * Kills (`KILL <id>`) every MariaDB connection using the test database, as a server-side failure or a DBA would.
 * Returns how many were killed. The admin connection itself uses no database, so it is not among them.
 */
export async function killDatabaseConnections(db: TestDatabase): Promise<number> {
  if (db.dialect !== 'mysql') throw new Error('killDatabaseConnections needs MariaDB');
  const name = new URL(db.url).pathname.slice(1);
  const admin = createDatabase(serviceUrls.mariadb, { poolMax: 1 });
  try {
    const [rows] = (await admin.raw('SELECT id FROM information_schema.processlist WHERE db = ?', [
      name,
    ])) as [{ id: number }[]];
    let killed = 0;
    for (const { id } of rows) {
      try {
        await admin.raw(`KILL ${Number(id)}`);
        killed++;
      } catch {
        // Already gone (closed between the query and the KILL).
      }
    }
    return killed;
  } finally {
    await admin.destroy();
  }
}
