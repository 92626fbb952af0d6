import { expect } from 'chai';
import Database from 'better-sqlite3';
import { cachePreparedStatements } from '../../../src/store/sqliteStatementCache.ts';

describe('cachePreparedStatements (SQLite)', () => {
  it('prepares each SQL text once and hands out the same statement, working as before', () => {
    const db = new Database(':memory:');
    const prepared: string[] = [];
    const original = db.prepare.bind(db);
    db.prepare = (sql: string) => {
      prepared.push(sql);
      return original(sql);
    };
    cachePreparedStatements(db);
    db.prepare('create table t (a integer)').run();
    for (let i = 0; i < 3; i++) db.prepare('insert into t (a) values (?)').run(i);
    expect(db.prepare('select count(*) as n from t').get()).to.deep.equal({ n: 3 });
    expect(db.prepare('insert into t (a) values (?)')).to.equal(db.prepare('insert into t (a) values (?)'));
    expect(prepared).to.deep.equal([
      'create table t (a integer)',
      'insert into t (a) values (?)',
      'select count(*) as n from t',
    ]);
    db.close();
  });

  it('keeps at most `size` texts, dropping the least recently used', () => {
    const made: string[] = [];
    const conn = {
      prepare(sql: string): unknown {
        made.push(sql);
        return { sql };
      },
    };
    cachePreparedStatements(conn, 2);
    conn.prepare('a');
    conn.prepare('b');
    conn.prepare('a'); // a is now the most recent
    conn.prepare('c'); // evicts b
    conn.prepare('a');
    conn.prepare('b');
    expect(made).to.deep.equal(['a', 'b', 'c', 'b']);
  });
});
