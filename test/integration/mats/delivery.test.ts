import { expect } from 'chai';
import type { Knex } from 'knex';
import type { MessageProperties } from '../../../src/broker/Transport.ts';
import { MatsRefuseMessageError } from '../../../src/mats/MatsErrors.ts';
import { dlqName, MatsHeader } from '../../../src/mats/MatsWire.ts';
import { describeMats, gate, Sink, waitFor, waitForDepth, type MatsEnv } from './matsTestKit.ts';
import { nextSeq, SpyTransport } from './SpyTransport.ts';

/** Publishes a drained message again to `queue` (what the operator's reissue command does). */
async function reissue(e: MatsEnv, from: string, to: string): Promise<MessageProperties> {
  const [dead] = await e.broker.drainQueue(from, 1);
  if (!dead) throw new Error(`nothing in ${from}`);
  const raw = e.createTransport('reissuer');
  await raw.connect();
  await raw.publish([{ target: { kind: 'queue', name: to }, body: dead.body, properties: dead.properties }]);
  return dead.properties;
}

describeMats('Mats delivery, retries and DLQ (statements 17-18, 20-24, 28)', (env) => {
  it('S17: a throwing stage is retried, then dead-lettered once with the DLQ headers; DlqCount grows on reissue', async () => {
    const e = env();
    const f = e.createFactory('node17');
    const ep = e.uid('S17.ep');
    const term = e.uid('S17.term');
    const attempts: number[] = [];
    const reached = new Sink<unknown>();
    f.staged(ep)
      .stage((ctx) => {
        attempts.push(ctx.deliveryAttempt);
        throw new Error(`boom at attempt ${ctx.deliveryAttempt}`);
      })
      .lastStage(() => {
        reached.push(1);
        return 'never';
      });
    f.terminator(term, () => reached.push(2));
    expect(await f.waitForReceiving(10_000)).to.equal(true);
    await f
      .getDefaultInitiator()
      .initiate((init) => init.traceId('S17').from('t').to(ep).replyTo(term, null).request('x'));
    const dlq = dlqName(e.prefix, ep);
    await waitForDepth(e.broker, dlq, 1);
    expect(attempts).to.deep.equal([1, 2]);
    const drained = await e.broker.drainQueue(dlq);
    expect(drained).to.have.length(1);
    const h = drained[0]!.properties.headers;
    expect(String(h[MatsHeader.DLQ_EXCEPTION])).to.match(/^Error: boom at attempt 2/);
    expect(h[MatsHeader.DLQ_REFUSED]).to.equal('false');
    expect(h[MatsHeader.DLQ_DELIVERY_COUNT]).to.equal(2);
    expect(h[MatsHeader.DLQ_DLQ_COUNT]).to.equal(1);
    expect(h[MatsHeader.DLQ_APP_AND_VERSION]).to.equal('MatsTest;1.0.0');
    expect(h[MatsHeader.DLQ_NODE]).to.equal('node17');
    expect(String(h[MatsHeader.DLQ_STAGE_ORIGIN])).to.contain('delivery.test.ts');
    expect(h[MatsHeader.DLQ_TIMESTAMP]).to.be.a('number');
    expect(h[MatsHeader.TRACE_ID]).to.equal('S17');
    expect(reached.items).to.deep.equal([]);

    // Reissue (a new publish, so the delivery count starts at 0 again); it fails again: DlqCount 2.
    const raw = e.createTransport('reissuer');
    await raw.connect();
    await raw.publish([
      {
        target: { kind: 'queue', name: `${e.prefix}${ep}` },
        body: drained[0]!.body,
        properties: drained[0]!.properties,
      },
    ]);
    await waitForDepth(e.broker, dlq, 1);
    const [again] = await e.broker.drainQueue(dlq);
    expect(again!.properties.headers[MatsHeader.DLQ_DLQ_COUNT]).to.equal(2);
    expect(attempts).to.deep.equal([1, 2, 1, 2]);
  });

  it('S18: MatsRefuseMessageError dead-letters on the first attempt', async () => {
    const e = env();
    const f = e.createFactory('n');
    const ep = e.uid('S18.ep');
    const attempts: number[] = [];
    f.single(ep, (ctx) => {
      attempts.push(ctx.deliveryAttempt);
      throw new MatsRefuseMessageError('never valid');
    });
    expect(await f.waitForReceiving(10_000)).to.equal(true);
    await f.getDefaultInitiator().initiate((init) => init.traceId('S18').from('t').to(ep).send('x'));
    await waitForDepth(e.broker, dlqName(e.prefix, ep), 1);
    const [dead] = await e.broker.drainQueue(dlqName(e.prefix, ep));
    expect(attempts).to.deep.equal([1]);
    expect(dead!.properties.headers[MatsHeader.DLQ_REFUSED]).to.equal('true');
    expect(dead!.properties.headers[MatsHeader.DLQ_DELIVERY_COUNT]).to.equal(1);
    expect(String(dead!.properties.headers[MatsHeader.DLQ_EXCEPTION])).to.match(
      /^MatsRefuseMessageError: never valid/,
    );
  });

  it('S18: an undecodable message is refused (dead-lettered at once)', async () => {
    const e = env();
    const f = e.createFactory('n');
    const ep = e.uid('S18u.ep');
    let runs = 0;
    f.single(ep, () => {
      runs++;
      return null;
    });
    expect(await f.waitForReceiving(10_000)).to.equal(true);
    const raw = e.createTransport('raw');
    await raw.connect();
    await raw.publish([
      {
        target: { kind: 'queue', name: `${e.prefix}${ep}` },
        body: Buffer.from('{"not":"an envelope"}'),
        properties: { messageId: 'garbage-1', persistent: true, headers: {} },
      },
    ]);
    await waitForDepth(e.broker, dlqName(e.prefix, ep), 1);
    const [dead] = await e.broker.drainQueue(dlqName(e.prefix, ep));
    expect(dead!.body.toString()).to.equal('{"not":"an envelope"}');
    expect(dead!.properties.headers[MatsHeader.DLQ_REFUSED]).to.equal('true');
    expect(dead!.properties.headers[MatsHeader.DLQ_DELIVERY_COUNT]).to.equal(1);
    expect(String(dead!.properties.headers[MatsHeader.DLQ_EXCEPTION])).to.match(/^ProtocolError/);
    expect(runs).to.equal(0);
  });

  it('S20: a message whose consumer is killed N times ends in the DLQ, diverted on x-delivery-count', async function () {
    this.timeout(60_000);
    const e = env();
    const f = e.createFactory('n');
    const ep = e.uid('S20.ep');
    const attempts: number[] = [];
    f.single(ep, async (ctx) => {
      attempts.push(ctx.deliveryAttempt);
      // The "crash": the broker loses the connection while the lambda runs; the delivery is never acked.
      await e.broker.dropConnections();
      return null;
    });
    expect(await f.waitForReceiving(10_000)).to.equal(true);
    // The consumer may drop the connections before this publish is confirmed: then its outcome is unknown.
    await f
      .getDefaultInitiator()
      .initiate((init) => init.traceId('S20').from('t').to(ep).send('x'))
      .catch(() => undefined);
    const dlq = dlqName(e.prefix, ep);
    await waitForDepth(e.broker, dlq, 1, 45_000);
    const drained = await e.broker.drainQueue(dlq);
    // At most a duplicate after a crash; never lost, never looping.
    expect(drained.length).to.be.within(1, 2);
    expect(drained[0]!.properties.headers[MatsHeader.DLQ_DELIVERY_COUNT]).to.be.at.least(3);
    expect(String(drained[0]!.properties.headers[MatsHeader.DLQ_EXCEPTION])).to.contain(
      'exceeds maxDeliveryAttempts',
    );
    expect([...new Set(attempts)].sort()).to.deep.equal([1, 2]);
  });

  it('S21: a failing message does not block the others; the retry delay is honoured', async () => {
    const e = env();
    const f = e.createFactory('n', { retryDelayMs: 300, concurrency: 2 });
    const ep = e.uid('S21.ep');
    const poisonAt: number[] = [];
    const goodDone = new Sink<number>();
    f.single<null, string>(ep, (_ctx, kind) => {
      if (kind === 'poison') {
        poisonAt.push(Date.now());
        throw new Error('poison');
      }
      goodDone.push(Date.now());
      return null;
    });
    expect(await f.waitForReceiving(10_000)).to.equal(true);
    await f.getDefaultInitiator().initiate((init) => init.traceId('S21p').from('t').to(ep).send('poison'));
    await waitFor(() => poisonAt.length >= 1, 'poison first attempt');
    await f.getDefaultInitiator().initiate((init) => {
      for (let i = 0; i < 5; i++) init.traceId(`S21.${i}`).from('t').to(ep).send('good');
    });
    const good = await goodDone.take(5);
    await waitForDepth(e.broker, dlqName(e.prefix, ep), 1);
    expect(poisonAt).to.have.length(2);
    // All good messages were done while the poison message sat in its retry delay.
    for (const t of good) expect(t).to.be.below(poisonAt[1]!);
    expect(poisonAt[1]! - poisonAt[0]!).to.be.at.least(290);
  });

  it('S22: reissuing a DLQ message to its queue continues the flow from that stage', async () => {
    const e = env();
    const f = e.createFactory('n');
    const ep = e.uid('S22.ep');
    const leaf = e.uid('S22.leaf');
    const term = e.uid('S22.term');
    let failing = true;
    const sink = new Sink<unknown>();
    f.staged<unknown, { kept?: string }>(ep)
      .stage<string>((ctx, state, s) => {
        state.kept = s;
        ctx.request(leaf, s);
      })
      .lastStage<string>((_ctx, state, reply) => {
        if (failing) throw new Error('stage 1 temporarily broken');
        return { kept: state.kept, reply };
      });
    f.single<string, string>(leaf, (_c, s) => `${s}-leaf`);
    f.terminator(term, (ctx, state, r) => sink.push({ state, r, traceId: ctx.traceId }));
    expect(await f.waitForReceiving(10_000)).to.equal(true);
    await f
      .getDefaultInitiator()
      .initiate((init) => init.traceId('S22').from('t').to(ep).replyTo(term, 'ts').request('in'));
    const stage1 = `${ep}.stage1`;
    await waitForDepth(e.broker, dlqName(e.prefix, stage1), 1);
    failing = false;
    await reissue(e, dlqName(e.prefix, stage1), `${e.prefix}${stage1}`);
    expect(await sink.first()).to.deep.equal({
      state: 'ts',
      r: { kept: 'in', reply: 'in-leaf' },
      traceId: 'S22',
    });
  });

  it('S23: nothing is published before the DB commit; the ack comes after the confirms', async () => {
    const e = env();
    const spy = new SpyTransport(e.createTransport('spy'));
    const f = e.createFactory('n', { transport: spy, outboxSweeper: false });
    const ep = e.uid('S23.ep');
    const leaf = e.uid('S23.leaf');
    const table = e.uid('s23_rows');
    await e.db.knex.schema.createTable(table, (t) => t.string('k').primary());
    const marks: Record<string, number> = {};
    let insertDone = false;
    // knex emits 'query' when a statement is sent (COMMIT has no 'query-response'); the leaf's check below
    // shows the row was committed when the message arrived.
    const onQuery = (q: { sql?: string }): void => {
      if (insertDone && marks.commit === undefined && /^commit/i.test(q.sql ?? '')) marks.commit = nextSeq();
    };
    e.db.knex.on('query', onQuery);
    const leafSaw = new Sink<boolean>();
    try {
      f.single(ep, async (ctx) => {
        const trx = await ctx.sql();
        await trx(table).insert({ k: 'row' });
        insertDone = true;
        marks.insert = nextSeq();
        ctx.goTo(leaf, null);
        // Still in the transaction: if the message went out now, the leaf would find no committed row.
        await new Promise((r) => setTimeout(r, 100));
        return undefined;
      });
      f.single(leaf, async () => {
        leafSaw.push(((await e.db.knex(table).where('k', 'row')) as unknown[]).length === 1);
        return null;
      });
      expect(await f.waitForReceiving(10_000)).to.equal(true);
      await f.getDefaultInitiator().initiate((init) => init.traceId('S23').from('t').to(ep).send(null));
      expect(await leafSaw.first()).to.equal(true);
    } finally {
      e.db.knex.off('query', onQuery);
    }
    const toLeaf = spy.events.find(
      (ev) => ev.kind === 'publish' && ev.messages.some((m) => m.target.name === `${e.prefix}${leaf}`),
    )!;
    const confirmed = await waitFor(
      () =>
        spy.events.find(
          (ev) =>
            ev.kind === 'published' && ev.ok && ev.messages === (toLeaf as { messages: unknown }).messages,
        ),
      'confirm',
    );
    const ack = await waitFor(
      () => spy.events.find((ev) => ev.kind === 'ack' && ev.queue === `${e.prefix}${ep}`),
      'ack',
    );
    expect(marks.insert).to.be.below(marks.commit!);
    expect(marks.commit).to.be.below(toLeaf.at);
    expect(confirmed.at).to.be.below(ack.at);
  });

  it('S23: with the outbox on, the ack may come once the messages are durably in the outbox (publish failed)', async () => {
    const e = env();
    const spy = new SpyTransport(e.createTransport('spy'));
    const f = e.createFactory('n', { transport: spy, outbox: true, outboxSweepMinAgeMs: 100 });
    const ep = e.uid('S23o.ep');
    const term = e.uid('S23o.term');
    const sink = new Sink<unknown>();
    let runs = 0;
    f.single(ep, (ctx) => {
      runs++;
      if (runs === 1) spy.failNextPublishes(1);
      ctx.goTo(term, 'via outbox');
      return undefined;
    });
    f.terminator(term, (_c, _s, m) => sink.push(m));
    expect(await f.waitForReceiving(10_000)).to.equal(true);
    await f.getDefaultInitiator().initiate((init) => init.traceId('S23o').from('t').to(ep).send(null));
    expect(await sink.first()).to.equal('via outbox');
    const ack = spy.events.find((ev) => ev.kind === 'ack' && ev.queue === `${e.prefix}${ep}`)!;
    const failed = spy.events.find((ev) => ev.kind === 'published' && !ev.ok)!;
    const sweptOk = await waitFor(
      () =>
        spy.events.find(
          (ev) =>
            ev.kind === 'published' &&
            ev.ok &&
            ev.messages.some((m) => m.target.name === `${e.prefix}${term}`),
        ),
      'the sweeper confirmed',
    );
    expect(failed.at).to.be.below(ack.at);
    expect(ack.at).to.be.below(sweptOk.at);
    expect(runs).to.equal(1);
    await waitFor(async () => (await e.store.countOutbox()) === 0, 'outbox emptied');
  });

  it('S24: when the connection drops mid-stage, the message is redelivered and re-sends with the same ids', async function () {
    this.timeout(30_000);
    const e = env();
    const f = e.createFactory('n');
    const ep = e.uid('S24.ep');
    const term = e.uid('S24.term');
    const idsPerAttempt = new Map<number, string[]>();
    const received = new Sink<string>();
    f.single(ep, async (ctx) => {
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        await ctx.initiate((init) => {
          ids.push(init.traceId(`c${i}`).to(term).send(i));
        });
      }
      idsPerAttempt.set(ctx.deliveryAttempt, ids);
      if (ctx.deliveryAttempt === 1) await e.broker.dropConnections();
      return null;
    });
    f.terminator(term, (ctx) => received.push(ctx.matsMessageId));
    expect(await f.waitForReceiving(10_000)).to.equal(true);
    await f
      .getDefaultInitiator()
      .initiate((init) => init.traceId('S24').from('t').to(ep).send(null))
      .catch(() => undefined);
    await waitFor(() => idsPerAttempt.has(2), 'redelivery', 20_000);
    await received.take(3, 20_000);
    expect(idsPerAttempt.get(2)).to.deep.equal(idsPerAttempt.get(1));
    await waitFor(() => new Set(received.items).size === 3, 'three distinct ids');
    expect([...new Set(received.items)].sort()).to.deep.equal([...idsPerAttempt.get(1)!].sort());
  });

  it('S28: an ack for a delivery whose channel closed is dropped safely; processing continues', async function () {
    this.timeout(30_000);
    const e = env();
    const transport = e.createTransport('s28');
    const errors: Error[] = [];
    transport.on('transport:error', ({ error }) => errors.push(error));
    const f = e.createFactory('n', { transport });
    const ep = e.uid('S28.ep');
    const done = new Sink<{ m: string; attempt: number }>();
    const dropGate = gate();
    f.single<null, string>(ep, async (ctx, m) => {
      if (m === 'first' && ctx.deliveryAttempt === 1) {
        await e.broker.dropConnections();
        dropGate.open();
        return null; // acked on the closed channel: must be dropped
      }
      done.push({ m, attempt: ctx.deliveryAttempt });
      return null;
    });
    expect(await f.waitForReceiving(10_000)).to.equal(true);
    await f
      .getDefaultInitiator()
      .initiate((init) => init.traceId('S28').from('t').to(ep).send('first'))
      .catch(() => undefined);
    await dropGate.wait;
    await waitFor(() => transport.state === 'connected', 'reconnected', 10_000);
    await waitFor(
      () =>
        f
          .getDefaultInitiator()
          .initiate((init) => init.traceId('S28b').from('t').to(ep).send('second'))
          .then(
            () => true,
            () => false,
          ),
      'second sent',
    );
    const got = await done.take(2, 15_000);
    expect(got).to.deep.include({ m: 'first', attempt: 2 });
    expect(got.map((g) => g.m)).to.include('second');
    expect(errors.filter((err) => /delivery tag|unknown/i.test(err.message))).to.deep.equal([]);
  });
});

export type { Knex };
