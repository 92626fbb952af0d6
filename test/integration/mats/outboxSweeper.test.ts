import { expect } from 'chai';
import type { OutgoingMessage } from '../../../src/broker/Transport.ts';
import { MatsHeader } from '../../../src/mats/MatsWire.ts';
import { describeMats, SQL_ENVS, waitFor, waitForDepth, type MatsEnv } from './matsTestKit.ts';
import { SpyTransport } from './SpyTransport.ts';

/** A transport that holds every publish until {@link open} (a broker that does not confirm: memory alarm). */
class HoldingTransport extends SpyTransport {
  #open!: () => void;
  readonly #gate = new Promise<void>((resolve) => (this.#open = resolve));

  open(): void {
    this.#open();
  }

  override async publish(messages: readonly OutgoingMessage[]): Promise<void> {
    this.events.push({ kind: 'publish', at: 0, messages });
    await this.#gate;
    return this.inner.publish(messages);
  }
}

function row(id: string, queue: string, headers: Record<string, number | string> = {}) {
  const message: OutgoingMessage = {
    target: { kind: 'queue', name: queue },
    body: Buffer.from(JSON.stringify({ id })),
    properties: { messageId: id, persistent: true, headers: { mats_MsgId: id, ...headers } },
  };
  return { message, matsMessageId: id, causeMessageId: undefined };
}

/** Counts the deliveries per message id on `queue` (declared first). */
async function observe(e: MatsEnv, queue: string): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  const t = e.createTransport('obs');
  await t.connect();
  await t.assertQueue(queue);
  const consumer = t.consume(queue, { prefetch: 50 }, (d) => {
    seen.set(d.properties.messageId, (seen.get(d.properties.messageId) ?? 0) + 1);
    d.ack();
  });
  await consumer.ready;
  return seen;
}

describeMats(
  'Mats outbox sweeper: per-row settling, attempts, dead-letters, leases',
  (env) => {
    const good = (p: string) => [1, 2, 3, 4, 5].map((i) => `${p}-good${i}`);

    async function oneBadFiveGood(e: MatsEnv, bad: Record<string, number>, tag: string): Promise<void> {
      const queue = `${e.prefix}${e.uid(`sweep.${tag}`)}`;
      const seen = await observe(e, queue);
      const ids = good(tag);
      // The bad row first: in one batch, by id order.
      await e.store.insertOutbox(
        e.db.knex,
        [row(`${tag}-bad`, queue, bad), ...ids.map((id) => row(id, queue))],
        Date.now() - 60_000,
      );
      const f = e.createFactory('n', { outboxMaxAttempts: 3, outboxSweepMinAgeMs: 0 });
      await f.start();
      await waitForDepth(e.broker, `DLQ.${queue}`, 1);
      await waitFor(async () => (await e.store.countOutbox()) === 0, 'outbox emptied');
      await waitFor(() => ids.every((id) => seen.has(id)), 'every good row delivered');
      // Every good row exactly once: no batch rollback re-sent confirmed rows.
      expect(ids.map((id) => seen.get(id))).to.deep.equal([1, 1, 1, 1, 1]);
      expect(seen.has(`${tag}-bad`)).to.equal(false);
      const [dead] = await e.broker.drainQueue(`DLQ.${queue}`, 5);
      expect(dead!.properties.messageId).to.equal(`${tag}-bad`);
      const reason = String(dead!.properties.headers[MatsHeader.DLQ_EXCEPTION]);
      expect(reason).to.match(/not published after 3 attempt\(s\)/);
      expect(reason.length).to.be.below(1000);
      expect(dead!.properties.headers[MatsHeader.DLQ_DELIVERY_COUNT]).to.equal(3);
    }

    it('A: one unpublishable row (headers the broker cannot take) neither strands nor re-sends its batch-mates', async () => {
      // A non-finite header number is stored as JSON null: no broker accepts that row as stored.
      await oneBadFiveGood(env(), { bad: Infinity }, 'hdr');
    });

    it('A: a row RabbitMQ rejects with a 406 (an expiration it refuses) is dead-lettered; the rest go once', async function () {
      const e = env();
      if (e.kind.transport !== 'rabbitmq') this.skip();
      // mats_Expires far in the future makes the per-hop expiration "1e+300": RabbitMQ closes the channel (406).
      await oneBadFiveGood(e, { [MatsHeader.EXPIRES]: 1e300 }, 'exp');
    });

    it('A: after a returned publish (queue deleted behind our back) the next publish declares the queue again', async () => {
      const e = env();
      const queue = `${e.prefix}${e.uid('sweep.deleted')}`;
      const f = e.createFactory('n', { outboxMaxAttempts: 5, outboxSweepMinAgeMs: 0 });
      await f.start();
      await e.store.insertOutbox(e.db.knex, [row('del-1', queue)], Date.now() - 60_000);
      await waitForDepth(e.broker, queue, 1);
      await e.broker.deleteQueue(queue);
      await e.store.insertOutbox(e.db.knex, [row('del-2', queue)], Date.now() - 60_000);
      await waitFor(async () => (await e.store.countOutbox()) === 0, 'outbox emptied');
      expect(await e.broker.queueDepth(`DLQ.${queue}`)).to.equal(0);
      expect((await e.broker.drainQueue(queue, 5)).map((m) => m.properties.messageId)).to.deep.equal([
        'del-2',
      ]);
    });

    it('B: no database transaction (nor connection) is held while the sweeper waits for the broker', async function () {
      this.timeout(20_000);
      const e = env();
      const queue = `${e.prefix}${e.uid('sweep.held')}`;
      const holding = new HoldingTransport(e.createTransport('held'));
      const f = e.createFactory('n', { transport: holding, outboxSweepMinAgeMs: 0 });
      try {
        await f.start();
        await e.store.insertOutbox(e.db.knex, [row('held-1', queue)], Date.now() - 60_000);
        await waitFor(() => holding.events.length > 0, 'the sweeper publishing');
        // The row the sweeper is publishing can be written by anyone else meanwhile.
        const write = e.db
          .knex('mats_outbox')
          .where('mats_message_id', 'held-1')
          .update({ created_timestamp: 1 });
        const blocked = new Promise<string>((resolve) => setTimeout(() => resolve('blocked'), 3000));
        expect(await Promise.race([write.then(() => 'written'), blocked])).to.equal('written');
      } finally {
        holding.open();
      }
      await waitFor(async () => (await e.store.countOutbox()) === 0, 'outbox emptied');
    });

    /**
     * A row that writer W (clock 10 minutes behind) is publishing itself (its broker holds the publish), with W's
     * sweeper leasing it or not; then sweeper B, whose clock runs 10 minutes ahead, sweeps every 20 ms with the default minimum age (2 s) and
     * lease (30 s). B must publish nothing within a second: the row is fresh, or leased. Returns B's publishes.
     */
    async function skewedSweeper(e: MatsEnv, wLeases: boolean): Promise<number> {
      const queue = `${e.prefix}${e.uid('sweep.skew')}`;
      const holding = new HoldingTransport(e.createTransport('w'));
      const w = e.createFactory('w', {
        transport: holding,
        // W's clock runs 10 minutes behind: by its own clock, the row it writes is old at once.
        clock: { now: () => Date.now() - 600_000 },
        outbox: true,
        outboxSweepIntervalMs: 20,
        outboxSweeper: wLeases,
        outboxSweepMinAgeMs: 0,
      });
      await w.start();
      const initiated = w
        .getDefaultInitiator()
        .initiate((init) => init.traceId('skew').from('t').to(queue).send('x'));
      try {
        await waitFor(async () => (await e.store.countOutbox()) === 1, 'the row stored');
        const [stored] = await e.db
          .knex('mats_outbox')
          .select<{ mats_message_id: string }[]>('mats_message_id');
        if (wLeases) {
          await waitFor(
            async () =>
              (await e.store.outboxRowState(stored!.mats_message_id))?.claimedBy?.startsWith('w') === true,
            "W's sweeper leasing the row",
          );
        }
        const bSpy = new SpyTransport(e.createTransport('b'));
        const b = e.createFactory('b', {
          transport: bSpy,
          clock: { now: () => Date.now() + 600_000 },
          outboxSweepIntervalMs: 20,
          outboxSweepMinAgeMs: 2000,
          outboxLeaseMs: 30_000,
        });
        await b.start();
        // Asserting that something does not happen: B has had ~50 sweeps.
        await new Promise((r) => setTimeout(r, 1000));
        return bSpy.published().length;
      } finally {
        holding.open();
        await initiated;
      }
    }

    it('C: a sweeper whose clock runs ahead does not take a fresh row of a writer whose clock runs behind (the database clock decides)', async function () {
      this.timeout(20_000);
      expect(await skewedSweeper(env(), false)).to.equal(0);
    });

    it('C: a sweeper whose clock runs ahead does not take a row another sweeper has leased', async function () {
      this.timeout(20_000);
      expect(await skewedSweeper(env(), true)).to.equal(0);
    });
  },
  SQL_ENVS,
);
