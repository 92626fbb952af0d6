import { expect } from 'chai';
import { deferBegin, type MysqlQueryable } from '../../../src/store/mysqlDeferredBegin.ts';

type Callback = (err: Error | null, rows?: unknown, fields?: unknown) => void;

/** A mysql2-like connection that records what reaches the server and answers multi-statement queries per part. */
function fakeConnection(fail?: (sql: string) => Error | undefined) {
  const sent: { sql: string; values: unknown }[] = [];
  const conn: MysqlQueryable = {
    query(options: unknown, values?: unknown, callback?: unknown): unknown {
      const sql = typeof options === 'string' ? options : (options as { sql: string }).sql;
      sent.push({ sql, values });
      if (typeof callback !== 'function') return { stream: () => 'stream' };
      const parts = sql.split(';').filter((s) => s.trim() !== '');
      const error = fail?.(sql);
      setImmediate(() => {
        if (error) return (callback as Callback)(error);
        const results = parts.map((p) => ({ result: p }));
        const fields = parts.map((p) => [`field of ${p}`]);
        if (parts.length === 1) (callback as Callback)(null, results[0], fields[0]);
        else (callback as Callback)(null, results, fields);
      });
      return undefined;
    },
  };
  deferBegin(conn);
  const run = (sql: string, values?: unknown[]) =>
    new Promise<{ rows: unknown; fields: unknown }>((resolve, reject) =>
      conn.query({ sql }, values, (err: Error | null, rows: unknown, fields: unknown) =>
        err ? reject(err) : resolve({ rows, fields }),
      ),
    );
  return { conn, sent, run };
}

describe('deferBegin() (MySQL BEGIN with the first statement)', () => {
  it('sends BEGIN in the same query as the first statement and answers with that statement’s result', async () => {
    const c = fakeConnection();
    await c.run('BEGIN;');
    expect(c.sent, 'BEGIN alone reaches nobody').to.deep.equal([]);
    const first = await c.run('insert into t (a) values (?)', [1]);
    expect(c.sent).to.deep.equal([{ sql: 'BEGIN;insert into t (a) values (?)', values: [1] }]);
    expect(first).to.deep.equal({
      rows: { result: 'insert into t (a) values (?)' },
      fields: ['field of insert into t (a) values (?)'],
    });
    await c.run('select 1');
    await c.run('COMMIT;');
    expect(c.sent.map((s) => s.sql)).to.deep.equal([
      'BEGIN;insert into t (a) values (?)',
      'select 1',
      'COMMIT;',
    ]);
  });

  it('sends nothing for a transaction that ends before any statement', async () => {
    const c = fakeConnection();
    await c.run('BEGIN;');
    await c.run('ROLLBACK;');
    await c.run('BEGIN;');
    await c.run('COMMIT;');
    expect(c.sent).to.deep.equal([]);
    await c.run('select 2');
    expect(
      c.sent.map((s) => s.sql),
      'no BEGIN left pending for the next user',
    ).to.deep.equal(['select 2']);
  });

  it('hands the first statement’s error to its caller and leaves the rest of the transaction as it was', async () => {
    const c = fakeConnection((sql) => (sql.includes('dup') ? new Error('ER_DUP_ENTRY') : undefined));
    await c.run('BEGIN;');
    let caught: unknown;
    await c.run('insert dup').catch((e: unknown) => (caught = e));
    expect((caught as Error).message).to.equal('ER_DUP_ENTRY');
    await c.run('ROLLBACK;');
    expect(c.sent.map((s) => s.sql)).to.deep.equal(['BEGIN;insert dup', 'ROLLBACK;']);
  });

  it('passes statements outside transactions through untouched', async () => {
    const c = fakeConnection();
    await c.run('select 1');
    await c.run('delete from t where id = ?', [3]);
    expect(c.sent).to.deep.equal([
      { sql: 'select 1', values: undefined },
      { sql: 'delete from t where id = ?', values: [3] },
    ]);
  });

  it('sends a pending BEGIN on its own before a streamed query (no result to split)', async () => {
    const c = fakeConnection();
    await c.run('BEGIN;');
    const q = c.conn.query({ sql: 'select * from t' }, []) as { stream(): string };
    expect(q.stream()).to.equal('stream');
    expect(c.sent.map((s) => s.sql)).to.deep.equal(['BEGIN', 'select * from t']);
  });
});
