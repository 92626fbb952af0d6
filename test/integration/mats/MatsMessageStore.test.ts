import { expect } from 'chai';
import type { OutgoingMessage } from '../../../src/broker/Transport.ts';
import { MatsMessageStore } from '../../../src/store/MatsMessageStore.ts';
import { describeEachDatabase } from '../../../harness/databases.ts';

function message(id: string, body: Buffer = Buffer.from(`{"id":"${id}"}`)) {
  const m: OutgoingMessage = {
    target: { kind: 'queue', name: 'mats.Q' },
    body,
    properties: {
      messageId: id,
      persistent: true,
      contentType: 'application/json',
      headers: { mats_MsgId: id, n: 1 },
    },
  };
  return { message: m, matsMessageId: id, causeMessageId: 'cause-1' };
}

describeEachDatabase('MatsMessageStore (mats_inbox, mats_outbox)', (db) => {
  let store: MatsMessageStore;
  before(async () => {
    await MatsMessageStore.migrate(db().knex);
    await MatsMessageStore.migrate(db().knex); // idempotent
    store = new MatsMessageStore(db().knex);
  });

  it('inbox: a duplicate is reported without spoiling the surrounding transaction (savepoint)', async () => {
    await db().knex.transaction(async (trx) => {
      expect(await store.insertInbox(trx, 'S', 'm1', 1000)).to.equal(true);
      expect(await store.insertInbox(trx, 'S', 'm1', 1001)).to.equal(false);
      // Still usable after the unique violation (PostgreSQL aborts the transaction without the savepoint).
      expect(await store.insertInbox(trx, 'S', 'm2', 1002)).to.equal(true);
      expect(await store.insertInbox(trx, 'OtherStage', 'm1', 1003)).to.equal(true);
    });
    expect(await store.countInbox()).to.equal(3);
    expect(await store.purgeInbox(1002)).to.equal(1);
    expect(await store.countInbox()).to.equal(2);
  });

  it('inbox purge deletes in batches by primary key, oldest first, and keeps what is newer', async () => {
    const old = Array.from({ length: 2500 }, (_, i) => `old${i}`);
    await db().knex.transaction(async (trx) => {
      for (let i = 0; i < old.length; i += 500)
        await store.insertInboxBatch(trx, 'P', old.slice(i, i + 500), 5000 + Math.floor(i / 500));
      await store.insertInboxBatch(trx, 'P', ['new1', 'new2'], 9000);
    });
    const deletes: string[] = [];
    let purged: number;
    const onQuery = (q: { sql: string }): void => {
      if (/^delete/i.test(q.sql)) deletes.push(q.sql);
    };
    db().knex.on('query', onQuery);
    try {
      // The earlier tests' rows (older still) go too.
      purged = await store.purgeInbox(8000, 1000);
    } finally {
      db().knex.off('query', onQuery);
    }
    expect(purged).to.be.at.least(2500);
    expect(deletes).to.have.length(Math.ceil(purged / 1000));
    const left = await db()
      .knex<{ mats_message_id: string }>('mats_inbox')
      .where('stage_id', 'P')
      .select('mats_message_id');
    expect(left.map((r) => r.mats_message_id).sort()).to.deep.equal(['new1', 'new2']);
  });

  it('inbox batch: one insert for new ids; a batch with a duplicate reports it per id, transaction still usable', async () => {
    await db().knex.transaction(async (trx) => {
      expect(await store.insertInboxBatch(trx, 'B', ['b1', 'b2', 'b3'], 2000)).to.deep.equal([
        true,
        true,
        true,
      ]);
      expect(await store.insertInboxBatch(trx, 'B', ['b4', 'b2', 'b5'], 2001)).to.deep.equal([
        true,
        false,
        true,
      ]);
      expect(await store.insertInboxBatch(trx, 'B', ['b6', 'b6'], 2002)).to.deep.equal([true, false]);
      expect(await store.insertInboxBatch(trx, 'B', [], 2003)).to.deep.equal([]);
      expect(await store.insertInbox(trx, 'B', 'b7', 2004)).to.equal(true);
      // More than one 500-row chunk with the duplicate in the last: the first chunk's ids are still reported new.
      const many = Array.from({ length: 600 }, (_, i) => `m${i}`);
      await store.insertInbox(trx, 'C', 'm599', 2005);
      const results = await store.insertInboxBatch(trx, 'C', many, 2006);
      expect(results.filter((r) => r)).to.have.length(599);
      expect(results[599]).to.equal(false);
    });
    const rows = await db().knex('mats_inbox').where('stage_id', 'B').count({ n: '*' });
    expect(Number(rows[0]!.n)).to.equal(7);
  });

  it('inbox batch, optimistic: new ids in one insert with the next statement; on MySQL a duplicate fails the transaction', async () => {
    await db().knex.transaction(async (trx) => {
      expect(await store.insertInboxBatch(trx, 'O', ['o1', 'o2'], 3000, true)).to.deep.equal([true, true]);
    });
    expect(
      (await db().knex('mats_inbox').where('stage_id', 'O').select('mats_message_id'))
        .map((r: { mats_message_id: string }) => r.mats_message_id)
        .sort(),
    ).to.deep.equal(['o1', 'o2']);
    const again = db().knex.transaction(async (trx) => {
      const fresh = await store.insertInboxBatch(trx, 'O', ['o3', 'o2'], 3001, true);
      // Elsewhere optimistic changes nothing: the duplicate is reported per id.
      if (db().dialect !== 'mysql') expect(fresh).to.deep.equal([true, false]);
      await trx('mats_inbox').where('stage_id', 'O').count({ n: '*' });
    });
    if (db().dialect === 'mysql') {
      // The duplicate fails the statement it travels with, and the caller (a group commit) commits again.
      let error: unknown;
      await again.catch((err: unknown) => (error = err));
      expect(error, 'the transaction fails').to.be.instanceOf(Error);
      expect(String((error as Error).message)).to.match(/Duplicate entry/);
      expect(await db().knex('mats_inbox').where({ stage_id: 'O', mats_message_id: 'o3' })).to.have.length(0);
    } else {
      await again;
      expect(await db().knex('mats_inbox').where({ stage_id: 'O', mats_message_id: 'o3' })).to.have.length(1);
    }
  });

  it('outbox: rows round-trip (properties, headers, multi-megabyte binary body) and are claimed, then deleted', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) % 256;
    await store.insertOutbox(db().knex, [message('o1', big), message('o2')], 5000);
    const byCause = await store.outboxByCause(db().knex, 'cause-1');
    expect(byCause.map((r) => r.matsMessageId)).to.deep.equal(['o1', 'o2']);
    expect(byCause[0]!.message.body.equals(big)).to.equal(true);
    expect(byCause[1]!.message.properties).to.deep.equal(message('o2').message.properties);
    expect(byCause[1]!.message.target).to.deep.equal({ kind: 'queue', name: 'mats.Q' });
    expect((await store.leaseOutbox({ minAgeMs: 2000, limit: 10 }, 'n1', 100, 6000)).length).to.equal(0);
    const leased = await store.leaseOutbox({ minAgeMs: 0, limit: 1 }, 'n1', 100, 6000);
    expect(leased.map((r) => r.matsMessageId)).to.deep.equal(['o1']);
    expect(leased[0]!.message.body.equals(big)).to.equal(true);
    expect(await store.deleteOutbox(db().knex, ['o1', 'o2'])).to.equal(2);
    expect(await store.countOutbox()).to.equal(0);
  });

  it("outbox: created times, ages and leases come from the database's clock, not the caller's", async () => {
    await store.insertOutbox(db().knex, [message('c1')]);
    const [stored] = await db()
      .knex('mats_outbox')
      .where('mats_message_id', 'c1')
      .select<{ created_timestamp: number | string }[]>('created_timestamp');
    // This machine's clock and the database server's agree: the stored time is epoch ms, now.
    expect(Number(stored!.created_timestamp)).to.be.closeTo(Date.now(), 5000);
    expect(await store.leaseOutbox({ minAgeMs: 60_000, limit: 10 }, 'a', 30_000)).to.have.length(0);
    const [leased] = await store.leaseOutbox({ minAgeMs: 0, limit: 10 }, 'a', 30_000);
    expect(leased!.matsMessageId).to.equal('c1');
    expect(leased!.ageMs).to.be.within(0, 5000);
    // Leased for 30 s by the database's clock: nobody takes it meanwhile, whatever their own clock says.
    expect(await store.leaseOutbox({ ids: ['c1'] }, 'b', 30_000)).to.have.length(0);
    await db().knex('mats_outbox').where('mats_message_id', 'c1').update({ claimed_until: 1 });
    expect(await store.leaseOutbox({ ids: ['c1'] }, 'b', 30_000)).to.have.length(1);
    await store.deleteOutbox(db().knex, ['c1']);
  });

  it('outbox lease: committed before publishing; leased rows are skipped until the lease passes (B)', async () => {
    await store.insertOutbox(db().knex, [message('l1'), message('l2'), message('l3')], 1);
    const other = new MatsMessageStore(db().connect());
    const first = await store.leaseOutbox({ minAgeMs: 990, limit: 2 }, 'a', 500, 1000);
    expect(first.map((r) => r.matsMessageId)).to.deep.equal(['l1', 'l2']);
    // No transaction is left open: another connection leases (and could write) at once.
    const second = await other.leaseOutbox({ minAgeMs: 1090, limit: 10 }, 'b', 500, 1100);
    expect(second.map((r) => r.matsMessageId)).to.deep.equal(['l3']);
    expect(await other.leaseOutbox({ ids: ['l1', 'l2', 'l3'] }, 'b', 500, 1499)).to.have.length(0);
    // a's lease passed (it died mid-publish): the rows are taken again (at-least-once).
    const again = await other.leaseOutbox({ ids: ['l1', 'l2'] }, 'b', 500, 1500);
    expect(again.map((r) => r.matsMessageId)).to.deep.equal(['l1', 'l2']);
    await store.deleteOutbox(db().knex, ['l1', 'l2', 'l3']);
  });

  it('outbox lease: release counts attempts only when asked, keeps a short reason, only for the owner (A)', async () => {
    await store.insertOutbox(db().knex, [message('r1')], 1);
    let [row] = await store.leaseOutbox({ ids: ['r1'] }, 'a', 60_000, 1000);
    expect(row!.attempts).to.equal(0);
    await store.releaseOutbox(['r1'], 'someone else', { countAttempt: true, reason: 'x' });
    expect(await store.outboxRowState('r1')).to.include({ attempts: 0, claimedBy: 'a' });
    await store.releaseOutbox(['r1'], 'a', { countAttempt: true, reason: 'TransportError: returned' });
    [row] = await store.leaseOutbox({ ids: ['r1'] }, 'a', 60_000, 1000);
    expect(row!.attempts).to.equal(1);
    await store.releaseOutbox(['r1'], 'a', { countAttempt: false, reason: 'outage' });
    expect(await store.outboxRowState('r1')).to.deep.equal({
      attempts: 1,
      claimedBy: null,
      lastError: 'outage',
    });
    expect(await store.leaseOutbox({ ids: ['r1'] }, 'a', 60_000, 1000)).to.have.length(1);
    await store.parkOutbox('r1', 'a', 'refused twice');
    expect(await store.leaseOutbox({ ids: ['r1'] }, 'a', 1, Date.now() * 1000)).to.have.length(0);
    expect((await store.outboxRowState('r1'))!.lastError).to.equal('refused twice');
    await store.deleteOutbox(db().knex, ['r1']);
  });

  it('outbox lease: a row with unreadable stored JSON is handed on marked, not failing its batch (A)', async () => {
    await store.insertOutbox(db().knex, [message('u1'), message('u2')], 1);
    await db().knex('mats_outbox').where('mats_message_id', 'u1').update({ headers: '{not json' });
    const rows = await store.leaseOutbox({ ids: ['u1', 'u2'] }, 'a', 60_000, 1000);
    expect(rows.map((r) => [r.matsMessageId, r.unreadable !== undefined])).to.deep.equal([
      ['u1', true],
      ['u2', false],
    ]);
    await store.deleteOutbox(db().knex, ['u1', 'u2']);
  });
});
