import { expect } from 'chai';
import type { OutgoingMessage } from '../../../src/broker/Transport.ts';
import { dlqName } from '../../../src/mats/MatsWire.ts';
import { InMemoryMetrics } from '../../../src/metrics/InMemoryMetrics.ts';
import { MatsMessageStore } from '../../../src/store/MatsMessageStore.ts';
import { describeMats, Sink, SQL_ENVS, waitFor, waitForDepth } from './matsTestKit.ts';
import { SpyTransport } from './SpyTransport.ts';

describeMats(
  'Mats SQL: transactions, inbox, outbox, sweeper (statements 19, 25-27)',
  (env) => {
    it('S19: when the stage DB work throws, or the stage throws after DB writes, no rows remain and nothing is sent', async () => {
      const e = env();
      const metrics = new InMemoryMetrics();
      const f = e.createFactory('n', { metrics });
      const ep = e.uid('S19.ep');
      const term = e.uid('S19.term');
      const table = e.uid('s19_rows');
      await e.db.knex.schema.createTable(table, (t) => t.string('k').primary());
      const attempts: Array<[string, number]> = [];
      const received = new Sink<unknown>();
      f.single<null, string>(
        ep,
        async (ctx, mode) => {
          attempts.push([mode, ctx.deliveryAttempt]);
          const trx = await ctx.sql();
          await trx(table).insert({ k: `${mode}-${ctx.deliveryAttempt}` });
          ctx.goTo(term, mode);
          await ctx.initiate((init) => init.traceId('child').to(term).send(`${mode}-child`));
          if (mode === 'dbFails') await trx(table).insert({ k: `${mode}-${ctx.deliveryAttempt}` }); // duplicate key
          if (mode === 'throwsAfter') throw new Error('after the DB writes');
          return undefined as unknown as null;
        },
        { outbox: true },
      );
      f.terminator(term, (_c, _s, m) => received.push(m));
      expect(await f.waitForReceiving(10_000)).to.equal(true);
      await f.getDefaultInitiator().initiate((init) => {
        init.traceId('S19a').from('t').to(ep).send('dbFails');
        init.traceId('S19b').to(ep).send('throwsAfter');
      });
      await waitForDepth(e.broker, dlqName(e.prefix, ep), 2);
      expect(attempts.filter(([m]) => m === 'dbFails').map(([, a]) => a)).to.deep.equal([1, 2]);
      expect(attempts.filter(([m]) => m === 'throwsAfter').map(([, a]) => a)).to.deep.equal([1, 2]);
      expect(await e.db.knex(table).count({ n: '*' }).first()).to.satisfy(
        (r: { n: unknown }) => Number(r.n) === 0,
      );
      expect(await e.store.countOutbox()).to.equal(0);
      expect(metrics.total('mats_out_messages_total', { stage: ep })).to.equal(0);
      expect(received.items).to.deep.equal([]);
    });

    it('a stage whose database is unreachable keeps the message and tries again without spending delivery attempts', async () => {
      const e = env();
      const f = e.createFactory('n', { databaseOutageRetryMs: 10_000 });
      const ep = e.uid('Outage.ep');
      const term = e.uid('Outage.term');
      const attempts: number[] = [];
      const received = new Sink<string>();
      f.single<null, string>(ep, (ctx, msg) => {
        attempts.push(ctx.deliveryAttempt);
        // What the driver throws while the database restarts (maxDeliveryAttempts is 2 here).
        if (attempts.length <= 3)
          throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
        ctx.goTo(term, msg);
        return undefined as unknown as null;
      });
      f.terminator<null, string>(term, (_c, _s, m) => received.push(m));
      expect(await f.waitForReceiving(10_000)).to.equal(true);
      await f
        .getDefaultInitiator()
        .initiate((init) => init.traceId('outage').from('t').to(ep).send('through'));
      expect(await received.take(1)).to.deep.equal(['through']);
      expect(attempts).to.deep.equal([1, 1, 1, 1]);
      expect(await e.broker.queueDepth(dlqName(e.prefix, ep))).to.equal(0);
    });

    it('with databaseOutageRetryMs 0 an unreachable database counts as a failed attempt (dead-lettered at the last)', async () => {
      const e = env();
      const f = e.createFactory('n', { databaseOutageRetryMs: 0 });
      const ep = e.uid('NoOutage.ep');
      const attempts: number[] = [];
      f.single<null, string>(ep, (ctx) => {
        attempts.push(ctx.deliveryAttempt);
        throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
      });
      expect(await f.waitForReceiving(10_000)).to.equal(true);
      await f.getDefaultInitiator().initiate((init) => init.traceId('no-outage').from('t').to(ep).send('x'));
      await waitForDepth(e.broker, dlqName(e.prefix, ep), 1);
      expect(attempts).to.deep.equal([1, 2]);
    });

    it('S25: with the inbox, a duplicate does not run the lambda again but re-sends the unconfirmed outgoing messages', async () => {
      const e = env();
      const spy = new SpyTransport(e.createTransport('spy'));
      const f = e.createFactory('n', { transport: spy, outboxSweeper: false });
      const ep = e.uid('S25.ep');
      const term = e.uid('S25.term');
      const runs: string[] = [];
      const received = new Sink<string>();
      f.single(
        ep,
        (ctx) => {
          runs.push(ctx.goTo(term, 'out'));
          spy.failNextPublishes(1); // the stage's publish after commit fails: the rows stay in the outbox
          return undefined;
        },
        { inbox: true },
      );
      f.terminator(term, (ctx) => received.push(ctx.matsMessageId));
      expect(await f.waitForReceiving(10_000)).to.equal(true);
      await f.getDefaultInitiator().initiate((init) => init.traceId('S25').from('t').to(ep).send(null));
      await waitFor(
        () => spy.events.some((ev) => ev.kind === 'ack' && ev.queue === `${e.prefix}${ep}`),
        'first ack',
      );
      expect(runs).to.have.length(1);
      expect(await e.store.countOutbox()).to.equal(1);

      // A duplicate of the processed message (same matsMessageId), e.g. a redelivery after a lost ack.
      const original = spy.published().find((m) => m.target.name === `${e.prefix}${ep}`)!;
      const raw = e.createTransport('dup');
      await raw.connect();
      await raw.publish([original]);
      expect(await received.first()).to.equal(runs[0]);
      expect(runs).to.have.length(1);
      await waitFor(async () => (await e.store.countOutbox()) === 0, 'outbox rows deleted after the re-send');

      // Another duplicate: nothing left to re-send, the lambda still does not run.
      await raw.publish([original]);
      await waitFor(
        () => spy.events.filter((ev) => ev.kind === 'ack' && ev.queue === `${e.prefix}${ep}`).length === 3,
        'third ack',
      );
      expect(runs).to.have.length(1);
      expect(received.items).to.have.length(1);
      expect(await e.store.countInbox()).to.be.at.least(1);
    });

    it('S26: after a crash between DB commit and publish, the sweeper publishes within interval + min age', async () => {
      const e = env();
      const spy = new SpyTransport(e.createTransport('crashing'));
      // Node A has no sweeper (it "crashed" after committing); node B only sweeps.
      const a = e.createFactory('A', { transport: spy, outbox: true, outboxSweeper: false });
      const b = e.createFactory('B', { outboxSweepIntervalMs: 50, outboxSweepMinAgeMs: 300 });
      await b.start();
      const ep = e.uid('S26.ep');
      const term = e.uid('S26.term');
      const received = new Sink<number>();
      let failedAt = 0;
      let runs = 0;
      a.single(ep, (ctx) => {
        runs++;
        ctx.goTo(term, 'swept');
        spy.failNextPublishes(1);
        ctx.doAfterCommit(() => (failedAt = Date.now()));
        return undefined;
      });
      b.terminator(term, () => received.push(Date.now()));
      expect(await a.waitForReceiving(10_000)).to.equal(true);
      expect(await b.waitForReceiving(10_000)).to.equal(true);
      await a.getDefaultInitiator().initiate((init) => init.traceId('S26').from('t').to(ep).send(null));
      const [at] = await received.take(1);
      expect(runs).to.equal(1);
      expect(at! - failedAt).to.be.below(300 + 50 + 1500);
      await waitFor(async () => (await e.store.countOutbox()) === 0, 'outbox emptied');
    });

    it('S26: initiate({ trx }) writes to the outbox in the caller transaction and publishes after its commit only', async () => {
      const e = env();
      // A long sweeper min age: a prompt delivery proves the after-commit publish, not the sweeper.
      const f = e.createFactory('n', { outboxSweepMinAgeMs: 60_000 });
      const term = e.uid('S26t.term');
      const table = e.uid('s26_rows');
      await e.db.knex.schema.createTable(table, (t) => t.string('k').primary());
      const received = new Sink<string>();
      f.terminator<unknown, string>(term, (_c, _s, m) => received.push(m));
      expect(await f.waitForReceiving(10_000)).to.equal(true);
      const init = f.getDefaultInitiator();
      await e.db.knex.transaction(async (trx) => {
        await trx(table).insert({ k: 'committed' });
        await init.initiate((i) => i.traceId('c').from('t').to(term).send('committed'), { trx });
        // Inside a savepoint too: published after the OUTER commit.
        await trx.transaction(async (sp) => {
          await init.initiate((i) => i.traceId('s').from('t').to(term).send('savepoint'), { trx: sp });
        });
        expect(await new MatsMessageStore(e.db.knex).countOutbox(trx)).to.equal(2);
      });
      await e.db.knex
        .transaction(async (trx) => {
          await init.initiate((i) => i.traceId('r').from('t').to(term).send('rolled back'), { trx });
          throw new Error('caller rolls back');
        })
        .catch(() => undefined);
      await init.initiate((i) => i.traceId('f').from('t').to(term).send('fence'));
      const got = await received.take(3, 5000);
      await waitFor(async () => (await e.store.countOutbox()) === 0, 'outbox emptied');
      expect([...got].sort()).to.deep.equal(['committed', 'fence', 'savepoint']);
      expect(received.items).to.not.include('rolled back');
    });

    it('S26: initiations joined to one caller transaction are published after its commit, each row on its own', async () => {
      const e = env();
      const spy = new SpyTransport(e.createTransport('spy'));
      // A long sweeper min age: a prompt delivery proves the after-commit publish, not the sweeper.
      const f = e.createFactory('n', { transport: spy, outboxSweepMinAgeMs: 60_000 });
      const term = e.uid('S26g.term');
      const received = new Sink<string>();
      f.terminator<unknown, string>(term, (_c, _s, m) => received.push(m));
      expect(await f.waitForReceiving(10_000)).to.equal(true);
      const init = f.getDefaultInitiator();
      const publishesBefore = spy.events.filter((ev) => ev.kind === 'publish').length;
      await e.db.knex.transaction(async (trx) => {
        for (let i = 0; i < 5; i++) {
          await init.initiate((x) => x.traceId(`g${i}`).from('t').to(term).send(`g${i}`), { trx });
        }
        // A savepoint that rolls back: its initiation joins the group but is not published.
        await trx
          .transaction(async (sp) => {
            await init.initiate((x) => x.traceId('gsp').from('t').to(term).send('gone'), { trx: sp });
            throw new Error('savepoint rolls back');
          })
          .catch(() => undefined);
        expect(spy.events.filter((ev) => ev.kind === 'publish').length).to.equal(publishesBefore);
      });
      const got = await received.take(5, 5000);
      await waitFor(async () => (await e.store.countOutbox()) === 0, 'outbox emptied');
      expect([...got].sort()).to.deep.equal(['g0', 'g1', 'g2', 'g3', 'g4']);
      const publishes = spy.events.filter((ev) => ev.kind === 'publish').slice(publishesBefore);
      const toTerm = publishes.filter((ev) =>
        ev.kind === 'publish' ? ev.messages.some((m) => m.target.name.endsWith(term)) : false,
      );
      // One publish per row: one refused row cannot fail (or strand) the other users' messages of the group.
      expect(toTerm.map((ev) => (ev.kind === 'publish' ? ev.messages.length : 0))).to.deep.equal([
        1, 1, 1, 1, 1,
      ]);
      expect(received.items).to.not.include('gone');
    });

    it("S26: initiateJoinedMany keeps each initiation's flags, inserts all in one statement, publishes after a certain commit without re-reading", async () => {
      const e = env();
      const spy = new SpyTransport(e.createTransport('spy'));
      const f = e.createFactory('n', { transport: spy, outboxSweepMinAgeMs: 60_000 });
      const term = e.uid('S26m.term');
      const received = new Sink<string>();
      f.terminator<unknown, string>(term, (c, _s, m) => received.push(`${c.traceId}:${m}`));
      expect(await f.waitForReceiving(10_000)).to.equal(true);
      const init = f.getDefaultInitiator();
      const statements: string[] = [];
      const onQuery = (q: { sql: string }): void => void statements.push(q.sql);
      e.db.knex.on('query', onQuery);
      try {
        const ids = await e.db.knex.transaction(async (trx) => {
          const mids = await init.initiateJoinedMany(
            [
              (x) => x.traceId('p').from('t').to(term).send('persistent'),
              (x) => x.traceId('np').from('t').to(term).nonPersistent(60_000).send('non-persistent'),
              () => undefined,
            ],
            trx,
          );
          expect(spy.events.filter((ev) => ev.kind === 'publish')).to.have.length(0);
          // A value from the handler: knex resolves executionPromise with it only on commit.
          return mids;
        });
        expect(ids.map((m) => m.length)).to.deep.equal([1, 1, 0]);
        const got = await received.take(2, 5000);
        expect([...got].sort()).to.deep.equal(['np:non-persistent', 'p:persistent']);
        await waitFor(async () => (await e.store.countOutbox()) === 0, 'outbox emptied');
        const published = spy.events.flatMap((ev) => (ev.kind === 'publish' ? ev.messages : []));
        const persistence = Object.fromEntries(
          published.map((m) => [m.properties.messageId, m.properties.persistent]),
        );
        expect(persistence).to.deep.equal({ [ids[0]![0]!]: true, [ids[1]![0]!]: false });
      } finally {
        e.db.knex.off('query', onQuery);
      }
      const outboxInserts = statements.filter((q) => /^insert into [`"]?mats_outbox/i.test(q));
      expect(outboxInserts).to.have.length(1);
      const existenceReads = statements.filter((q) =>
        /^select .* from [`"]?mats_outbox[`"]? where [`"]?mats_message_id/i.test(q),
      );
      expect(existenceReads, 'no re-read after a certain commit').to.have.length(0);
    });

    it('S26: initiateJoinedMany in a caller transaction that rolls back publishes nothing', async () => {
      const e = env();
      const f = e.createFactory('n', { outboxSweepMinAgeMs: 60_000 });
      const term = e.uid('S26r.term');
      const received = new Sink<string>();
      f.terminator<unknown, string>(term, (_c, _s, m) => received.push(m));
      expect(await f.waitForReceiving(10_000)).to.equal(true);
      const init = f.getDefaultInitiator();
      // An explicit rollback resolves knex's executionPromise (with undefined): the rows are looked for, not found.
      const trx = await e.db.knex.transaction();
      await init.initiateJoinedMany([(x) => x.traceId('x').from('t').to(term).send('rolled back')], trx);
      await trx.rollback();
      await init.initiate((x) => x.traceId('f').from('t').to(term).send('fence'));
      expect(await received.take(1, 5000)).to.deep.equal(['fence']);
      expect(received.items).to.not.include('rolled back');
      expect(await e.store.countOutbox()).to.equal(0);
    });

    it('S26/S27: a joined group committed after half the sweeper min age is claimed with locks, never sent twice', async () => {
      const e = env();
      const spy = new SpyTransport(e.createTransport('spy'));
      // The sweeper runs often and may take the rows as soon as they are committed and 100 ms old.
      const f = e.createFactory('n', { transport: spy, outboxSweepMinAgeMs: 100, outboxSweepIntervalMs: 10 });
      const term = e.uid('S26o.term');
      const received = new Sink<string>();
      f.terminator<unknown, string>(term, (_c, _s, m) => received.push(m));
      expect(await f.waitForReceiving(10_000)).to.equal(true);
      const init = f.getDefaultInitiator();
      await e.db.knex.transaction(async (trx) => {
        await init.initiateJoinedMany([(x) => x.traceId('o').from('t').to(term).send('old')], trx);
        await new Promise((r) => setTimeout(r, 150));
        return 'committed';
      });
      await waitFor(async () => (await e.store.countOutbox()) === 0, 'outbox emptied');
      await init.initiate((x) => x.traceId('f').from('t').to(term).send('fence'));
      await received.take(2, 5000);
      expect(received.items.filter((m) => m === 'old')).to.have.length(1);
      const toTerm = spy.events
        .flatMap((ev) => (ev.kind === 'publish' ? ev.messages : []))
        .filter((m) => m.target.name.endsWith(term));
      expect(toTerm, 'published once: the fence and the old row').to.have.length(2);
    });

    it('S27: two sweepers never publish the same row; every row is published and removed', async function () {
      this.timeout(60_000);
      const e = env();
      const queue = `${e.prefix}${e.uid('S27.q')}`;
      const rows = 300;
      const old = Date.now() - 60_000;
      const messages = Array.from(
        { length: rows },
        (_, i): { message: OutgoingMessage; matsMessageId: string; causeMessageId: undefined } => ({
          matsMessageId: `S27_${i}`,
          causeMessageId: undefined,
          message: {
            target: { kind: 'queue', name: queue },
            body: Buffer.from(`{"i":${i}}`),
            properties: { messageId: `S27_${i}`, persistent: true, headers: { n: i } },
          },
        }),
      );
      await e.store.insertOutbox(e.db.knex, messages, old);
      const spies = [new SpyTransport(e.createTransport('sw1')), new SpyTransport(e.createTransport('sw2'))];
      const sweepers = spies.map((spy, i) =>
        e.createFactory(`sweeper${i}`, {
          transport: spy,
          db: e.db.connect(),
          outboxSweepIntervalMs: 5,
          outboxSweepBatchSize: 10,
          outboxSweepMinAgeMs: 0,
        }),
      );
      await Promise.all(sweepers.map((s) => s.start()));
      await waitFor(async () => (await e.store.countOutbox()) === 0, 'outbox emptied', 45_000);
      const byNode = spies.map((s) => new Set(s.published().map((m) => m.properties.messageId)));
      const both = [...byNode[0]!].filter((id) => byNode[1]!.has(id));
      expect(both).to.deep.equal([]);
      expect(byNode[0]!.size + byNode[1]!.size).to.equal(rows);
      await waitForDepth(e.broker, queue, rows);
      expect(await e.broker.queueDepth(queue)).to.equal(rows);
    });
  },
  SQL_ENVS,
);
