import { expect } from 'chai';
import { foldStatements, type MysqlQueryable } from '../../../src/store/mysqlStatementFolding.ts';

type Callback = (err: Error | null, rows?: unknown, fields?: unknown) => void;

const WB = { matssocketWriteBehind: true };
const RC = { matssocketReadAtCommit: true };

/**
 * A mysql2-like connection that records what reaches the server and answers a multi-statement query per part,
 * stopping at the first part `fail` names (as the server does).
 */
function fakeConnection(fail?: (part: string) => Error | undefined) {
  const sent: { sql: string; values: unknown }[] = [];
  const conn: MysqlQueryable = {
    format: (sql: string, values?: unknown) =>
      Array.isArray(values) ? values.reduce<string>((s, v) => s.replace('?', JSON.stringify(v)), sql) : sql,
    query(options: unknown, values?: unknown, callback?: unknown): unknown {
      const sql = typeof options === 'string' ? options : (options as { sql: string }).sql;
      sent.push({ sql, values });
      if (typeof callback !== 'function') return { stream: () => 'stream' };
      const parts = sql.split(';').filter((s) => s.trim() !== '');
      const error = parts.map((p) => fail?.(p)).find((e) => e !== undefined);
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
  foldStatements(conn);
  const run = (sql: string, values?: unknown[], options: object = {}) =>
    new Promise<{ rows: unknown; fields: unknown }>((resolve, reject) =>
      conn.query({ sql, ...options }, values, (err: Error | null, rows: unknown, fields: unknown) =>
        err ? reject(err) : resolve({ rows, fields }),
      ),
    );
  const sqls = () => sent.map((s) => s.sql);
  return { conn, sent, sqls, run };
}

describe('foldStatements() (MySQL statements sent together)', () => {
  describe('BEGIN', () => {
    it('goes in the same query as the first statement, which gets its own result', async () => {
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
      expect(c.sqls()).to.deep.equal(['BEGIN;insert into t (a) values (?)', 'select 1', 'COMMIT;']);
    });

    it('is not sent at all by a transaction that ends before any statement', async () => {
      const c = fakeConnection();
      await c.run('BEGIN;');
      await c.run('ROLLBACK;');
      await c.run('BEGIN;');
      await c.run('COMMIT;');
      expect(c.sent).to.deep.equal([]);
      await c.run('select 2');
      expect(c.sqls(), 'no BEGIN left pending for the next user').to.deep.equal(['select 2']);
    });

    it('leaves a failing first statement’s error to its caller and the ROLLBACK to the transaction', async () => {
      const c = fakeConnection((p) => (p.includes('dup') ? new Error('ER_DUP_ENTRY') : undefined));
      await c.run('BEGIN;');
      const caught = await c.run('insert dup').catch((e: unknown) => e);
      expect((caught as Error).message).to.equal('ER_DUP_ENTRY');
      await c.run('ROLLBACK;');
      expect(c.sqls()).to.deep.equal(['BEGIN;insert dup', 'ROLLBACK;']);
    });

    it('goes alone before a streamed query (no result to split)', async () => {
      const c = fakeConnection();
      await c.run('BEGIN;');
      const q = c.conn.query({ sql: 'select * from t' }, []) as { stream(): string };
      expect(q.stream()).to.equal('stream');
      expect(c.sqls()).to.deep.equal(['BEGIN', 'select * from t']);
    });
  });

  describe('write-behind', () => {
    it('goes with the next statement, rendered with its values; the next statement gets its own result', async () => {
      const c = fakeConnection();
      await c.run('BEGIN;');
      await c.run('select s from session where id = ?', ['a']);
      await c.run('insert into o (id) values (?)', ['m1'], WB);
      await c.run('insert into o (id) values (?)', ['m2'], WB);
      expect(c.sent).to.have.length(1);
      const next = await c.run('insert into box (id) values (?)', [7]);
      expect(next.rows).to.deep.equal({ result: 'insert into box (id) values (?)' });
      await c.run('COMMIT;');
      expect(c.sent).to.deep.equal([
        { sql: 'BEGIN;select s from session where id = ?', values: ['a'] },
        {
          sql: 'insert into o (id) values ("m1");insert into o (id) values ("m2");insert into box (id) values (?)',
          values: [7],
        },
        { sql: 'COMMIT;', values: undefined },
      ]);
    });

    it('goes with the COMMIT when it is the last write, and with the BEGIN when it is the only one', async () => {
      const c = fakeConnection();
      await c.run('BEGIN;');
      await c.run('select 1');
      await c.run('insert into o (id) values (?)', ['m1'], WB);
      await c.run('COMMIT;');
      await c.run('BEGIN;');
      await c.run('insert into o (id) values (?)', ['m2'], WB);
      await c.run('COMMIT;');
      expect(c.sqls()).to.deep.equal([
        'BEGIN;select 1',
        'insert into o (id) values ("m1");COMMIT;',
        'BEGIN;insert into o (id) values ("m2");COMMIT;',
      ]);
    });

    it('is dropped by a ROLLBACK (which would undo it), and sent at once outside a transaction', async () => {
      const c = fakeConnection();
      await c.run('BEGIN;');
      await c.run('select 1');
      await c.run('insert into o (id) values (?)', ['gone'], WB);
      await c.run('ROLLBACK;');
      await c.run('insert into o (id) values (?)', ['m3'], WB);
      expect(c.sqls()).to.deep.equal(['BEGIN;select 1', 'ROLLBACK;', 'insert into o (id) values (?)']);
    });

    it('failing with the COMMIT: the transaction is rolled back before the error is reported', async () => {
      const c = fakeConnection((p) => (p.includes('bad') ? new Error('ER_DATA_TOO_LONG') : undefined));
      await c.run('BEGIN;');
      await c.run('select 1');
      await c.run('insert into o (id) values (?)', ['bad'], WB);
      const caught = await c.run('COMMIT;').catch((e: unknown) => e);
      expect((caught as Error).message).to.equal('ER_DATA_TOO_LONG');
      expect(c.sqls()).to.deep.equal([
        'BEGIN;select 1',
        'insert into o (id) values ("bad");COMMIT;',
        'ROLLBACK',
      ]);
    });

    it('failing when sent ahead of a streamed query: the COMMIT reports it and rolls back instead', async () => {
      const c = fakeConnection((p) => (p.includes('bad') ? new Error('ER_DATA_TOO_LONG') : undefined));
      await c.run('BEGIN;');
      await c.run('insert into o (id) values (?)', ['bad'], WB);
      c.conn.query({ sql: 'select * from t' }, []);
      await new Promise((r) => setImmediate(r));
      const caught = await c.run('COMMIT;').catch((e: unknown) => e);
      expect((caught as Error).message).to.equal('ER_DATA_TOO_LONG');
      expect(c.sqls()).to.deep.equal([
        'BEGIN;insert into o (id) values ("bad")',
        'select * from t',
        'ROLLBACK',
      ]);
    });

    it('failing with another statement: that statement fails, and the transaction ends as the caller decides', async () => {
      const c = fakeConnection((p) => (p.includes('bad') ? new Error('ER_DATA_TOO_LONG') : undefined));
      await c.run('BEGIN;');
      await c.run('insert into o (id) values (?)', ['bad'], WB);
      const caught = await c.run('select 2').catch((e: unknown) => e);
      expect((caught as Error).message).to.equal('ER_DATA_TOO_LONG');
      await c.run('ROLLBACK;');
      expect(c.sqls()).to.deep.equal(['BEGIN;insert into o (id) values ("bad");select 2', 'ROLLBACK;']);
    });
  });

  describe('read-at-commit', () => {
    it('goes with the COMMIT, in its place among the writes, and is answered with its own result', async () => {
      const c = fakeConnection();
      await c.run('BEGIN;');
      await c.run('insert into i (id) values (?)', ['x'], WB);
      const read = c.run('select s from session where id = ?', ['a'], RC);
      await c.run('insert into o (id) values (?)', ['m1'], WB);
      expect(c.sent, 'nothing before the COMMIT').to.deep.equal([]);
      const commit = await c.run('COMMIT;');
      expect(commit.rows).to.deep.equal({ result: 'COMMIT' });
      expect((await read).rows).to.deep.equal({ result: 'select s from session where id = "a"' });
      expect((await read).fields).to.deep.equal(['field of select s from session where id = "a"']);
      expect(c.sqls()).to.deep.equal([
        'BEGIN;insert into i (id) values ("x");select s from session where id = "a";insert into o (id) values ("m1");COMMIT;',
      ]);
    });

    it('fails with the query it travelled in, and when the transaction is rolled back before it was sent', async () => {
      const c = fakeConnection((p) => (p.includes('bad') ? new Error('ER_DUP_ENTRY') : undefined));
      await c.run('BEGIN;');
      const read = c.run('select 1', [], RC);
      await c.run('insert into o (id) values (?)', ['bad'], WB);
      const [readFailure, commitFailure] = await Promise.all([
        read.catch((e: unknown) => e),
        c.run('COMMIT;').catch((e: unknown) => e),
      ]);
      expect((readFailure as Error).message).to.equal('ER_DUP_ENTRY');
      expect((commitFailure as Error).message).to.equal('ER_DUP_ENTRY');
      await c.run('BEGIN;');
      const dropped = c.run('select 2', [], RC);
      await c.run('ROLLBACK;');
      expect(((await dropped.catch((e: unknown) => e)) as Error).message).to.match(/rolled back before/);
      expect(c.sqls()).to.deep.equal([
        'BEGIN;select 1;insert into o (id) values ("bad");COMMIT;',
        'ROLLBACK',
      ]);
    });

    it('is sent at once outside a transaction, and answered when sent ahead of a streamed query', async () => {
      const c = fakeConnection();
      expect((await c.run('select 3', [], RC)).rows).to.deep.equal({ result: 'select 3' });
      await c.run('BEGIN;');
      const read = c.run('select 4', [], RC);
      c.conn.query({ sql: 'select * from big' }, []);
      expect((await read).rows).to.deep.equal({ result: 'select 4' });
      expect(c.sqls()).to.deep.equal(['select 3', 'BEGIN;select 4', 'select * from big']);
    });
    it('alone ahead of a streamed query, it gets its result (a one-statement query reports no list)', async () => {
      const c = fakeConnection();
      await c.run('BEGIN;');
      await c.run('select 5');
      const read = c.run('select 6', [], RC);
      c.conn.query({ sql: 'select * from big' }, []);
      expect((await read).rows).to.deep.equal({ result: 'select 6' });
      expect(c.sqls()).to.deep.equal(['BEGIN;select 5', 'select 6', 'select * from big']);
    });
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
});
