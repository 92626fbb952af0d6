import type { Knex } from 'knex';
import type { Dialect } from './database.ts';

/**
 * SQL text written here instead of built by knex, for the statements of the hot transactions
 * (`TransactionScript`): building a statement with knex's query builder costs more CPU than sending it, and the
 * texts come out the same for the same shape. Values are always bindings (`?`), never spliced into the text.
 */

/** One SQL statement with `?` placeholders and its values. */
export interface Statement {
  readonly sql: string;
  readonly bindings: readonly Knex.RawBinding[];
}

/** An SQL expression put into the text as it is (e.g. the database's clock), not bound as a value. */
export interface SqlExpression {
  readonly sqlExpression: string;
}

/** A quoted identifier: backticks on MySQL/MariaDB, double quotes on PostgreSQL and SQLite. */
export function ident(dialect: Dialect, name: string): string {
  return dialect === 'mysql' ? `\`${name}\`` : `"${name}"`;
}

/** `?, ?, …` for `n` values. */
export function placeholders(n: number): string {
  return n === 1 ? '?' : `?${', ?'.repeat(n - 1)}`;
}

/** A multi-row `INSERT INTO table (…) VALUES (…), (…)`; every row has the first row's columns, in its order. */
export function insertRows(
  dialect: Dialect,
  table: string,
  rows: readonly Readonly<Record<string, Knex.RawBinding | SqlExpression>>[],
): Statement {
  const columns = Object.keys(rows[0]!);
  const bindings: Knex.RawBinding[] = [];
  const values = rows.map((row) => {
    const cells = columns.map((c) => {
      const v = row[c];
      if (isExpression(v)) return v.sqlExpression;
      bindings.push(v as Knex.RawBinding);
      return '?';
    });
    return `(${cells.join(', ')})`;
  });
  const sql =
    `insert into ${ident(dialect, table)} (${columns.map((c) => ident(dialect, c)).join(', ')}) ` +
    `values ${values.join(', ')}`;
  return { sql, bindings };
}

function isExpression(v: unknown): v is SqlExpression {
  return typeof v === 'object' && v !== null && 'sqlExpression' in v;
}
