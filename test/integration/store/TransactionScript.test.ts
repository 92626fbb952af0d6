import { expect } from 'chai';
import type { Knex } from 'knex';
import { createDatabase } from '../../../src/store/database.ts';
import { causedByOptimisticConflict, causedByUniqueViolation } from '../../../src/store/sqlErrors.ts';
import type { Statement } from '../../../src/store/sqlText.ts';
import { inTransactionScript, TransactionScript } from '../../../src/store/TransactionScript.ts';
import { describeEachDatabase } from '../../../harness/databases.ts';

const TABLE = 'tx_script_test';

/** The statement of a knex builder, with knex's `?` placeholders (a `raw` of it renders it for the dialect). */
function statementOf(qb: Knex.QueryBuilder): Statement {
  const { sql, bindings } = qb.toSQL();
  return { sql, bindings: bindings as Knex.RawBinding[] };
}

describeEachDatabase('TransactionScript (a transaction run at once on MySQL/MariaDB and SQLite)', (db) => {
  let knex: Knex;
  /** One connection: a transaction left open on it would swallow the next test's writes. */
  let single: Knex;

  before(async () => {
    knex = db().knex;
    await knex.schema.createTable(TABLE, (t) => {
      t.string('id', 32).primary();
      t.integer('n').notNullable();
    });
    single = createDatabase(db().url, { poolMax: 1, connectTimeoutMs: 3000 });
  });
  after(async () => {
    await single?.destroy();
  });
  beforeEach(() => knex(TABLE).delete());

  const insert = (id: string, n = 1) => statementOf(knex(TABLE).insert({ id, n }));
  const rows = async (): Promise<string[]> =>
    (await knex(TABLE).select('id').orderBy('id')).map((r: { id: string }) => r.id);

  /** The queries `k` hands to its driver while `fn` runs. */
  async function queriesOf<T>(k: Knex, fn: () => Promise<T>): Promise<{ result: T; queries: string[] }> {
    const queries: string[] = [];
    const onQuery = (q: { sql: string }) => queries.push(q.sql);
    k.on('query', onQuery);
    try {
      return { result: await fn(), queries };
    } finally {
      k.off('query', onQuery);
    }
  }

  it('commits writes and answers reads at commit; on MySQL and SQLite all at once, without a knex transaction', async () => {
    const { queries } = await queriesOf(knex, async () => {
      const tx = new TransactionScript(knex, db().dialect);
      await tx.write(insert('a'));
      await tx.write(insert('b', 2));
      const read = tx.readAtCommit<{ id: string; n: number }>(
        statementOf(knex(TABLE).select('id', 'n').orderBy('id')),
      );
      expect(tx.usesKnex, 'a knex transaction only where no script').to.equal(db().dialect === 'postgres');
      await tx.commit();
      expect(await tx.settled).to.equal('committed');
      expect((await read).map((r) => [r.id, Number(r.n)])).to.deep.equal([
        ['a', 1],
        ['b', 2],
      ]);
    });
    if (db().dialect !== 'postgres') expect(queries).to.have.length(1);
    expect(await rows()).to.deep.equal(['a', 'b']);
  });

  it('a failing statement fails the commit: nothing stored, reads fail, the connection is not left in the transaction', async () => {
    await knex(TABLE).insert({ id: 'taken', n: 0 });
    const tx = new TransactionScript(single, db().dialect);
    let read: Promise<unknown> | undefined;
    const failure = await (async () => {
      await tx.write(insert('fresh'));
      read = tx.readAtCommit(statementOf(single(TABLE).select('id')));
      read.catch(() => {});
      await tx.write(insert('taken'));
      await tx.commit();
    })().catch((e: unknown) => e);
    expect(causedByUniqueViolation(failure), String(failure)).to.be.true;
    await tx.rollback();
    expect(await tx.settled).to.equal('rolled back');
    if (db().dialect !== 'postgres')
      expect(
        await read!.then(
          () => 'read',
          (e: unknown) => causedByUniqueViolation(e),
        ),
      ).to.equal(true);
    expect(await rows()).to.deep.equal(['taken']);
    // The pool's one connection autocommits again: what it writes now is seen by another connection.
    await single(TABLE).insert({ id: 'after', n: 3 });
    expect(await rows()).to.deep.equal(['after', 'taken']);
  });

  it('asking for the knex transaction sends the held statements first, in order', async () => {
    const tx = new TransactionScript(knex, db().dialect);
    await tx.write(insert('held'));
    const trx = await tx.knex();
    expect(tx.usesKnex).to.be.true;
    // The held insert is in the transaction before this read, which sees it.
    expect((await trx(TABLE).select('id')).map((r: { id: string }) => r.id)).to.deep.equal(['held']);
    await tx.write(insert('later'));
    const read = tx.readAtCommit<{ id: string }>(statementOf(knex(TABLE).select('id').orderBy('id')));
    await tx.commit();
    expect((await read).map((r) => r.id)).to.deep.equal(['held', 'later']);
    expect(await tx.settled).to.equal('committed');
    expect(await rows()).to.deep.equal(['held', 'later']);
  });

  it('a held write failing when the knex transaction begins: nothing stays open, the connection is free', async () => {
    await knex(TABLE).insert({ id: 'taken', n: 0 });
    const tx = new TransactionScript(single, db().dialect);
    const failure = await (async () => {
      await tx.write(insert('taken'));
      const read = tx.readAtCommit(statementOf(single(TABLE).select('id')));
      read.catch(() => {});
      // SQLite sends the held statements as the knex transaction begins; MySQL with its next statement.
      const trx = await tx.knex();
      await trx(TABLE).select('id');
      await tx.commit();
    })().catch((e: unknown) => e);
    expect(causedByUniqueViolation(failure), String(failure)).to.be.true;
    await tx.rollback();
    expect(await tx.settled).to.equal('rolled back');
    // The pool's one connection is back (a transaction left open would hold it: the insert would time out).
    await single(TABLE).insert({ id: 'after', n: 3 });
    expect(await rows()).to.deep.equal(['after', 'taken']);
  });

  it('a knex transaction that cannot begin (no connection) fails the held reads with it', async () => {
    const unreachable = {
      mysql: 'mysql://root@127.0.0.1:1/none',
      postgres: 'postgres://postgres@127.0.0.1:1/none',
      sqlite: 'sqlite:/nonexistent-matssocket-dir/none.sqlite',
    }[db().dialect];
    const down = createDatabase(unreachable, { poolMax: 1, connectTimeoutMs: 500 });
    try {
      const tx = new TransactionScript(down, db().dialect);
      const wrote = await tx.write(insert('never')).then(() => 'held', String);
      const read = tx.readAtCommit(statementOf(down(TABLE).select('id')));
      read.catch(() => {});
      expect(String(await tx.knex().catch((e: unknown) => e))).to.match(/begin transaction failed/);
      // PostgreSQL has no scripts: there the write itself began the transaction and failed.
      if (db().dialect === 'postgres') expect(wrote).to.match(/begin transaction failed/);
      else expect(wrote).to.equal('held');
      expect(
        await read.then(
          () => 'read',
          () => 'failed',
        ),
      ).to.equal('failed');
      await tx.rollback();
    } finally {
      await down.destroy();
    }
  });

  it('rollback drops what is held and settles as rolled back', async () => {
    const tx = new TransactionScript(knex, db().dialect);
    await tx.write(insert('never'));
    const read = tx.readAtCommit(statementOf(knex(TABLE).select('id')));
    read.catch(() => {});
    await tx.rollback();
    expect(await tx.settled).to.equal('rolled back');
    if (db().dialect !== 'postgres')
      expect(
        await read.then(
          () => 'read',
          () => 'failed',
        ),
      ).to.equal('failed');
    expect(await rows()).to.deep.equal([]);
    expect(await tx.commit().then(() => 'committed', String)).to.match(/already been rolled back/);
  });

  it('a write that must change n rows and changes another number fails the transaction as an optimistic conflict', async () => {
    await knex(TABLE).insert({ id: 'one', n: 1 });
    const update = (n: number) => statementOf(knex(TABLE).update({ n }).where('n', '>=', 1));
    for (const viaKnex of [false, true]) {
      const tx = new TransactionScript(knex, db().dialect);
      await tx.write(insert(`x${viaKnex}`, 0));
      if (viaKnex) await tx.knex();
      const failure = await (async () => {
        await tx.write(update(5), { expectRows: 2 });
        await tx.commit();
      })().catch((e: unknown) => e);
      await tx.rollback();
      expect(causedByOptimisticConflict(failure), String(failure)).to.be.true;
      expect(await tx.settled).to.equal('rolled back');
    }
    expect(await knex(TABLE).select('id', 'n')).to.deep.equal([{ id: 'one', n: 1 }]);
    // The right count commits.
    const tx = new TransactionScript(knex, db().dialect);
    await tx.write(update(7), { expectRows: 1 });
    await tx.commit();
    expect(await knex(TABLE).select('id', 'n')).to.deep.equal([{ id: 'one', n: 7 }]);
  });

  it('inTransactionScript runs the function, commits, and maps failures to DataAccessError', async () => {
    const n = await inTransactionScript(
      knex,
      db().dialect,
      async (tx) => {
        await tx.write(insert('x'));
        return 7;
      },
      { operation: 'test', attempts: 3 },
    );
    expect(n).to.equal(7);
    const err = await inTransactionScript(
      knex,
      db().dialect,
      async (tx) => {
        await tx.write(insert('x'));
      },
      { operation: 'the test write', attempts: 3 },
    ).catch((e: unknown) => e as Error);
    expect(err).to.have.property('code', 'DATA_ACCESS');
    expect(String((err as Error).message)).to.contain('the test write');
    expect(await rows()).to.deep.equal(['x']);
  });

  it('a joined script runs in its owner transaction, which commits', async () => {
    await knex.transaction(async (trx) => {
      const tx = TransactionScript.joining(trx, db().dialect);
      await tx.write(insert('joined'));
      expect(await tx.knex()).to.equal(trx);
      expect(await tx.commit().then(() => 'committed', String)).to.match(/owner/);
    });
    expect(await rows()).to.deep.equal(['joined']);
  });
});
