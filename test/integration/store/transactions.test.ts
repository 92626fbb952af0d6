import { expect } from 'chai';
import type { Knex } from 'knex';
import { describeEachDatabase } from '../../../harness/databases.ts';
import { createDatabase } from '../../../src/store/database.ts';
import { writeBehind } from '../../../src/store/mysqlStatementFolding.ts';
import { commitOrThrow } from '../../../src/store/transactions.ts';
import { DataAccessError } from '../../../src/errors.ts';

/**
 * Transactions as the store's connections run them. On MySQL/MariaDB a transaction's BEGIN travels with its first
 * statement, and write-behind writes with the next one (src/store/mysqlStatementFolding.ts); these pin that nothing
 * else changes: what a transaction does is atomic, a failing statement rolls back cleanly, and a pooled connection
 * never carries a BEGIN or a write over to the next user. One connection in the pool, so every test reuses the
 * connection the previous one left.
 */
describeEachDatabase('store connections: transactions', (db) => {
  let one: Knex;
  let other: Knex;

  before(async () => {
    one = createDatabase(db().url, { poolMax: 1 });
    other = db().knex;
    await other.schema.createTable('trx_probe', (t) => {
      t.integer('id').primary();
      t.string('v', 20);
    });
  });
  after(async () => {
    await one.destroy();
  });
  beforeEach(async () => {
    await other('trx_probe').delete();
  });

  const ids = async (k: Knex): Promise<number[]> =>
    (await k('trx_probe').select('id').orderBy('id')).map((r: { id: number }) => Number(r.id));

  it('commits every statement of a transaction, the first one included', async () => {
    const read = await one.transaction(async (trx) => {
      await trx('trx_probe').insert({ id: 1, v: 'a' });
      await trx('trx_probe').insert({ id: 2, v: 'b' });
      return ids(trx);
    });
    expect(read).to.deep.equal([1, 2]);
    expect(await ids(other)).to.deep.equal([1, 2]);
  });

  it('rolls back the first statement with the rest (the BEGIN ran before it)', async () => {
    const failed = await one
      .transaction(async (trx) => {
        await trx('trx_probe').insert({ id: 1, v: 'a' });
        expect(await ids(other), 'uncommitted work is invisible to another connection').to.deep.equal([]);
        throw new Error('undo');
      })
      .catch((e: unknown) => e);
    expect((failed as Error).message).to.equal('undo');
    expect(await ids(other)).to.deep.equal([]);
  });

  it('rolls back cleanly when the first statement fails, and the connection serves the next caller', async () => {
    await other('trx_probe').insert({ id: 7, v: 'x' });
    const failed = await one
      .transaction(async (trx) => {
        await trx('trx_probe').insert({ id: 7, v: 'duplicate' });
      })
      .catch((e: unknown) => e);
    expect(failed, 'the duplicate key is reported').to.have.property('message').that.is.a('string');
    await one('trx_probe').insert({ id: 8, v: 'after' });
    expect(await ids(other), 'autocommitted, not inside a transaction left open').to.deep.equal([7, 8]);
  });

  it('leaves nothing pending after a transaction without statements', async () => {
    await one.transaction(() => Promise.resolve());
    await one.transaction(async (trx) => trx.rollback()).catch(() => undefined);
    await one('trx_probe').insert({ id: 3, v: 'c' });
    expect(await ids(other), 'the insert was autocommitted, not opened a transaction').to.deep.equal([3]);
  });

  it('takes a savepoint as the first statement and rolls back to it', async () => {
    await one.transaction(async (trx) => {
      await trx
        .transaction(async (inner) => {
          await inner('trx_probe').insert({ id: 4, v: 'd' });
          throw new Error('inner');
        })
        .catch(() => undefined);
      await trx('trx_probe').insert({ id: 5, v: 'e' });
    });
    expect(await ids(other)).to.deep.equal([5]);
  });

  it('returns each statement’s own result inside a transaction (rows, affected counts)', async () => {
    await other('trx_probe').insert([
      { id: 1, v: 'a' },
      { id: 2, v: 'b' },
    ]);
    await one.transaction(async (trx) => {
      const rows = await trx('trx_probe').select('v').where('id', 2);
      expect(rows).to.deep.equal([{ v: 'b' }]);
      expect(await trx('trx_probe').where('id', '<=', 2).delete()).to.equal(2);
    });
    await one.transaction(async (trx) => {
      expect(await trx('trx_probe').where('id', 1).update({ v: 'z' }), 'first statement: an update').to.equal(
        0,
      );
    });
  });

  describe('write-behind writes', () => {
    it('are committed with the transaction, and invisible to others before', async () => {
      await one.transaction(async (trx) => {
        await trx('trx_probe').insert({ id: 1, v: 'a' });
        await writeBehind(trx('trx_probe').insert({ id: 2, v: 'b' }));
        await writeBehind(trx('trx_probe').insert({ id: 3, v: 'c' }));
        expect(await ids(other)).to.deep.equal([]);
        expect(await ids(trx), 'the transaction reads its own writes').to.deep.equal([1, 2, 3]);
        await writeBehind(trx('trx_probe').insert({ id: 4, v: 'd' }));
      });
      expect(await ids(other)).to.deep.equal([1, 2, 3, 4]);
    });

    it('failing at the COMMIT: nothing of the transaction is committed, and the connection is clean after', async () => {
      await other('trx_probe').insert({ id: 9, v: 'x' });
      const failed = await one
        .transaction(async (trx) => {
          await trx('trx_probe').insert({ id: 1, v: 'a' });
          await writeBehind(trx('trx_probe').insert({ id: 9, v: 'duplicate' }));
        })
        .catch((e: unknown) => e);
      expect(failed, 'the duplicate key is reported').to.have.property('message').that.is.a('string');
      expect(await ids(other)).to.deep.equal([9]);
      await one('trx_probe').insert({ id: 10, v: 'after' });
      expect(await ids(other), 'autocommitted, not inside a transaction left open').to.deep.equal([9, 10]);
    });

    it('failing at the COMMIT of a transaction begun without a handler: commitOrThrow() throws', async () => {
      await other('trx_probe').insert({ id: 9, v: 'x' });
      const trx = await one.transaction();
      const failed = await (async () => {
        await trx('trx_probe').insert({ id: 1, v: 'a' });
        // On MySQL/MariaDB it fails with the COMMIT; elsewhere write-behind is not used and it fails here.
        await writeBehind(trx('trx_probe').insert({ id: 9, v: 'duplicate' }));
        await commitOrThrow(trx);
      })().catch((e: unknown) => e);
      if (!trx.isCompleted()) await trx.rollback().catch(() => undefined);
      if (db().dialect === 'mysql') expect(failed).to.be.instanceOf(DataAccessError);
      else expect(failed).to.have.property('message').that.is.a('string');
      expect(await ids(other)).to.deep.equal([9]);
    });

    it('are undone by a rollback', async () => {
      await one
        .transaction(async (trx) => {
          await trx('trx_probe').insert({ id: 1, v: 'a' });
          await writeBehind(trx('trx_probe').insert({ id: 2, v: 'b' }));
          throw new Error('undo');
        })
        .catch(() => undefined);
      await writeBehind(one('trx_probe').insert({ id: 5, v: 'alone' }));
      expect(await ids(other), 'outside a transaction it is sent at once').to.deep.equal([5]);
    });
  });
});
