import { expect } from 'chai';
import { migrateLatest, schemaStatus } from '../../../src/store/migrate.ts';
import { describeEachDatabase } from '../../../harness/databases.ts';

describeEachDatabase('migrations by nodes booting together', (db) => {
  it('three processes migrating a fresh database at once all succeed; the migrations are applied once', async () => {
    // Separate knex instances stand for separate node processes (separate pools and connections).
    const nodes = [db().connect(), db().connect(), db().connect()];
    const results = await Promise.all(nodes.map((knex) => migrateLatest(knex)));
    const applied = results.flatMap((sets) => sets.flatMap((set) => set.applied));
    const migrations = (await schemaStatus(db().knex)).map((s) => s.pending);
    expect(migrations).to.deep.equal([[], []]);
    // Each migration was applied by exactly one of the three.
    expect(applied.length).to.equal(new Set(applied).size);
    expect(applied.length).to.be.greaterThan(0);
  });
});
