import type { Knex } from 'knex';

/**
 * Ids that would break a store building SQL or JSON by string concatenation, or a wire layer that re-encodes them:
 * every one must come back byte for byte.
 */
export const INJECTION_IDS: Readonly<Record<string, string>> = {
  'SQL drop table': "x'; DROP TABLE mats_socket_session; --",
  'SQL quote and backslash': `a\\'b"c\\\\d\\"; DELETE FROM mats_socket_outbox WHERE '1'='1`,
  'SQL comment and union': '1 OR 1=1 /* */ UNION SELECT * FROM mats_socket_inbox -- ',
  'JSON operator object text': '{"$ne":1}',
  'JSON breaking characters': '"},{"t":"WELCOME","sid":"x"}]\n\t\u0001',
  unicode: 'æøå 漢字 🚀 \u202e\u200b é',
};

/** The table names of the database (sorted), to check that nothing was dropped or created by an injection. */
export async function storeTableNames(knex: Knex): Promise<string[]> {
  const client = String((knex.client as { config: { client: unknown } }).config.client);
  let rows: { name: string }[];
  if (client.includes('sqlite')) {
    rows = await knex.raw<{ name: string }[]>(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    );
  } else if (client.includes('mysql')) {
    const [r] = (await knex.raw(
      'SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE()',
    )) as [{ name: string }[]];
    rows = r;
  } else {
    const r = await knex.raw<{ rows: { name: string }[] }>(
      "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public'",
    );
    rows = r.rows;
  }
  return rows.map((r) => r.name).sort();
}
