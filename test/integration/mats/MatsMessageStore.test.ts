import { expect } from 'chai';
import type { OutgoingMessage } from '../../../src/broker/Transport.ts';
import { MatsMessageStore } from '../../../src/store/MatsMessageStore.ts';
import { describeEachDatabase } from '../../helpers/databases.ts';

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

  it('outbox: rows round-trip (properties, headers, multi-megabyte binary body) and are claimed, then deleted', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) % 256;
    await store.insertOutbox(db().knex, [message('o1', big), message('o2')], 5000);
    const byCause = await store.outboxByCause(db().knex, 'cause-1');
    expect(byCause.map((r) => r.matsMessageId)).to.deep.equal(['o1', 'o2']);
    expect(byCause[0]!.message.body.equals(big)).to.equal(true);
    expect(byCause[1]!.message.properties).to.deep.equal(message('o2').message.properties);
    expect(byCause[1]!.message.target).to.deep.equal({ kind: 'queue', name: 'mats.Q' });
    await db().knex.transaction(async (trx) => {
      expect((await store.claimOutboxBatch(trx, 4000, 10)).length).to.equal(0);
      const claimed = await store.claimOutboxBatch(trx, 6000, 1);
      expect(claimed.map((r) => r.matsMessageId)).to.deep.equal(['o1']);
      expect(await store.deleteOutbox(trx, ['o1', 'o2'])).to.equal(2);
    });
    expect(await store.countOutbox()).to.equal(0);
  });

  it('outbox: a row locked by one sweeper is skipped by another (FOR UPDATE SKIP LOCKED; not SQLite)', async function () {
    if (db().dialect === 'sqlite') this.skip();
    await store.insertOutbox(db().knex, [message('l1'), message('l2'), message('l3')], 1);
    const other = db().connect();
    const a = await db().knex.transaction();
    const b = await other.transaction();
    try {
      const first = await store.claimOutboxBatch(a, 10, 2);
      const second = await store.claimOutboxBatch(b, 10, 10);
      expect(first.map((r) => r.matsMessageId)).to.deep.equal(['l1', 'l2']);
      expect(second.map((r) => r.matsMessageId)).to.not.include.members(['l1', 'l2']);
      const byId = await store.claimOutboxByIds(b, ['l1', 'l2', 'l3']);
      expect(byId.map((r) => r.matsMessageId)).to.not.include.members(['l1', 'l2']);
    } finally {
      await a.rollback();
      await b.rollback();
    }
    await store.deleteOutbox(db().knex, ['l1', 'l2', 'l3']);
  });
});
