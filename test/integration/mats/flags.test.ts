import { expect } from 'chai';
import { ErrorCode } from '../../../src/errors.ts';
import { MatsFuturizerCapacityError, MatsFuturizerTimeoutError } from '../../../src/mats/MatsErrors.ts';
import type { MatsFactory } from '../../../src/mats/MatsFactory.ts';
import { dlqName, MatsHeader } from '../../../src/mats/MatsWire.ts';
import { InMemoryMetrics } from '../../../src/metrics/InMemoryMetrics.ts';
import { describeMats, gate, Sink, waitFor } from './matsTestKit.ts';
import { SpyTransport } from './SpyTransport.ts';

describeMats('Mats flags, topics and the futurizer (statements 29-33)', (env) => {
  it('S29: an interactive flow overtakes a backlog of standard messages, and interactive is sticky', async () => {
    const e = env();
    const f = e.createFactory('n', { concurrency: 1 });
    f.holdEndpointsUntilFactoryIsStarted();
    const ep = e.uid('S29.ep');
    const leaf = e.uid('S29.leaf');
    const order: string[] = [];
    const backlog = 30;
    f.staged<null, object>(ep)
      .stage<string>((ctx, _s, tag) => {
        if (tag === 'ia') ctx.request(leaf, tag);
        else ctx.next(tag);
      })
      .lastStage<string>(async (ctx, _s, tag) => {
        await new Promise((r) => setTimeout(r, 5));
        order.push(`${tag}:${String(ctx.isInteractive)}`);
        return null;
      });
    f.single<string, string>(leaf, (ctx, tag) => {
      order.push(`leaf:${String(ctx.isInteractive)}`);
      return tag;
    });
    await f.getDefaultInitiator().initiate((init) => {
      init.traceId('S29').from('t');
      for (let i = 0; i < backlog; i++) init.to(ep).send(`std${i}`);
    });
    await f
      .getDefaultInitiator()
      .initiate((init) => init.traceId('S29ia').from('t').to(ep).interactive().send('ia'));
    await f.start();
    await waitFor(() => order.length === backlog + 2, 'all processed', 20_000);
    expect(order).to.include('leaf:true');
    expect(order).to.include('ia:true');
    expect(order.indexOf('ia:true')).to.be.below(backlog / 2);
    expect(order.filter((o) => o.startsWith('std'))).to.have.length(backlog);
    expect(order.filter((o) => o.startsWith('std') && o.endsWith(':true'))).to.deep.equal([]);
  });

  it('S30: nonPersistent publishes transient messages; the TTL applies per hop, reduced by processing time', async () => {
    const e = env();
    const spy = new SpyTransport(e.createTransport('spy'));
    const f = e.createFactory('n', { transport: spy });
    const ep = e.uid('S30.ep');
    const leaf = e.uid('S30.leaf');
    const term = e.uid('S30.term');
    const sink = new Sink<unknown>();
    f.staged<unknown, object>(ep)
      .stage(async (ctx) => {
        await new Promise((r) => setTimeout(r, 200));
        ctx.request(leaf, null);
      })
      .lastStage((ctx) => ({ np: ctx.isNonPersistent }));
    f.single(leaf, () => 'leaf');
    f.terminator(term, (_c, _s, r) => sink.push(r));
    expect(await f.waitForReceiving(10_000)).to.equal(true);
    await f
      .getDefaultInitiator()
      .initiate((init) =>
        init.traceId('S30').from('t').to(ep).replyTo(term, null).nonPersistent(5000).request(null),
      );
    expect(await sink.first()).to.deep.equal({ np: true });
    const sent = await waitFor(
      () => (spy.published().length >= 4 ? spy.published() : undefined),
      'four confirmed hops',
    );
    for (const m of sent) {
      expect(m.properties.persistent, m.target.name).to.equal(false);
      expect(m.properties.headers[MatsHeader.NON_PERSISTENT]).to.equal('true');
      expect(m.properties.headers[MatsHeader.EXPIRES]).to.be.a('number');
    }
    const toEp = sent.find((m) => m.target.name === `${e.prefix}${ep}`)!;
    const toLeaf = sent.find((m) => m.target.name === `${e.prefix}${leaf}`)!;
    expect(toEp.properties.expiration).to.equal(5000);
    // The 200 ms spent in stage 0 are taken off the next hop's TTL.
    expect(toLeaf.properties.expiration).to.be.within(4000, 4810);
  });

  it('S30: a TTL expires messages not consumed in time; expired messages never reach the lambda, even after prefetch', async () => {
    const e = env();
    const metrics = new InMemoryMetrics();
    const f = e.createFactory('n', { metrics });
    f.holdEndpointsUntilFactoryIsStarted();
    const ep = e.uid('S30x.ep');
    const seen = new Sink<string>();
    f.single<null, string>(ep, (_c, m) => {
      seen.push(m);
      return null;
    });
    await f
      .getDefaultInitiator()
      .initiate((init) => init.traceId('S30x').from('t').to(ep).nonPersistent(50).send('expires'));
    // A message without broker expiration, only a mats_Expires deadline that has passed (by a sender's clock 10 s
    // behind): judged by that deadline. (Its original, with a 50 ms broker TTL, expires in the queue.)
    const raw = e.createTransport('raw');
    await raw.connect();
    const spy = new SpyTransport(raw);
    const probe = e.createFactory('probe', { transport: spy, clock: { now: () => Date.now() - 10_000 } });
    await probe
      .getDefaultInitiator()
      .initiate((init) => init.traceId('S30p').from('t').to(ep).nonPersistent(50).send('stale'));
    // Time must pass for a TTL to lapse.
    await new Promise((r) => setTimeout(r, 300));
    await f.getDefaultInitiator().initiate((init) => init.traceId('S30f').from('t').to(ep).send('fence'));
    const stale = spy.published()[0]!;
    const { expiration: _brokerTtl, ...withoutBrokerTtl } = stale.properties;
    await raw.publish([{ ...stale, properties: withoutBrokerTtl }]);
    await f.start();
    await seen.first();
    await waitFor(
      () => metrics.total('mats_expired_dropped_total', { stage: ep }) >= 1,
      'the stale one dropped',
    );
    expect(seen.items).to.deep.equal(['fence']);
  });

  it('S30: a sender whose clock runs behind by more than the TTL: its messages, delivered in time, are processed', async () => {
    const e = env();
    const f = e.createFactory('n');
    const ep = e.uid('S30s.ep');
    const seen = new Sink<string>();
    f.single<null, string>(ep, (_c, m) => {
      seen.push(m);
      return null;
    });
    await f.start();
    // Its mats_Expires deadline (its clock + 5 s) passed a minute ago by this node's clock; its hop TTL did not.
    const behind = e.createFactory('behind', { clock: { now: () => Date.now() - 60_000 } });
    await behind
      .getDefaultInitiator()
      .initiate((init) => init.traceId('S30s').from('t').to(ep).nonPersistent(5000).send('in time'));
    expect(await seen.first()).to.equal('in time');
  });

  it('S31: publish reaches every subscribed node once, never unsubscribed ones; a reconnected node subscribes again', async function () {
    this.timeout(40_000);
    const e = env();
    const nodes = ['A', 'B', 'C'].map((n) => e.createFactory(n));
    const topicEp = e.uid('S31.topic');
    const got = new Map<string, string[]>([
      ['A', []],
      ['B', []],
    ]);
    for (const [i, name] of ['A', 'B'].entries()) {
      nodes[i]!.subscriptionTerminator<unknown, string>(topicEp, (_c, _s, m) => got.get(name)!.push(m));
    }
    nodes[2]!.single(e.uid('S31.other'), () => null);
    for (const n of nodes) expect(await n.waitForReceiving(10_000)).to.equal(true);
    const publisher = nodes[2]!.getDefaultInitiator();
    await publisher.initiate((init) => init.traceId('S31').from('t').to(topicEp).publish('one'));
    await waitFor(() => got.get('A')!.includes('one') && got.get('B')!.includes('one'), 'both got it');

    await e.broker.dropConnections();
    // Probe until both re-subscribed (publications while disconnected are lost: topic semantics).
    let probe = 0;
    await waitFor(
      async () => {
        await publisher
          .initiate((init) => init.traceId('S31p').from('t').to(topicEp).publish(`probe${++probe}`))
          .catch(() => undefined);
        const p = (n: string) => got.get(n)!.some((m) => m.startsWith('probe'));
        return p('A') && p('B');
      },
      'both re-subscribed',
      20_000,
    );
    await publisher.initiate((init) => init.traceId('S31').from('t').to(topicEp).publish('two'));
    await waitFor(() => got.get('A')!.includes('two') && got.get('B')!.includes('two'), 'both got two');
    for (const name of ['A', 'B']) {
      expect(got.get(name)!.filter((m) => m === 'one')).to.have.length(1);
      expect(got.get(name)!.filter((m) => m === 'two')).to.have.length(1);
    }
  });

  it('S32: waitForReceiving() on a subscription terminator resolves only once it is bound and consuming', async () => {
    const e = env();
    const f = e.createFactory('n');
    for (let i = 0; i < 5; i++) {
      const id = e.uid('S32.topic');
      const sink = new Sink<string>();
      const ep = f.subscriptionTerminator<unknown, string>(id, (_c, _s, m) => sink.push(m));
      expect(await ep.waitForReceiving(10_000)).to.equal(true);
      await f.getDefaultInitiator().initiate((init) => init.traceId('S32').from('t').to(id).publish(`m${i}`));
      expect(await sink.first()).to.equal(`m${i}`);
    }
  });

  it('a failing subscription terminator is retried, then dead-lettered, and the next topic message gets through', async () => {
    const e = env();
    const f = e.createFactory('n');
    const id = e.uid('poisonTopic');
    const attempts: number[] = [];
    const sink = new Sink<string>();
    const ep = f.subscriptionTerminator<unknown, string>(id, (ctx, _s, m) => {
      if (m === 'poison') {
        attempts.push(ctx.deliveryAttempt);
        throw new Error('the subscriber cannot take this one');
      }
      sink.push(m);
    });
    expect(await ep.waitForReceiving(10_000)).to.equal(true);
    const publish = (m: string) =>
      f.getDefaultInitiator().initiate((init) => init.traceId('poison').from('t').to(id).publish(m));
    await publish('poison');
    await publish('next');
    // On RabbitMQ the topic's classic queue carries no x-delivery-count: without counting here, attempt 1 forever.
    expect(await sink.first()).to.equal('next');
    expect(attempts).to.deep.equal(Array.from({ length: attempts.length }, (_, i) => i + 1));
    expect(attempts.length).to.be.within(1, 5);
  });

  it('S33: a futurized request resolves on the originating node with reply and context', async () => {
    const e = env();
    const a = e.createFactory('A');
    const b = e.createFactory('B');
    const svc = e.uid('S33.svc');
    b.single<{ n: number }, { n: number }>(svc, (ctx, inc) => {
      ctx.addString('side', `s${inc.n}`);
      ctx.addBytes('bin', new Uint8Array([inc.n]));
      return { n: inc.n * 2 };
    });
    expect(await b.waitForReceiving(10_000)).to.equal(true);
    const futA = a.getFuturizer();
    const futB = b.getFuturizer();
    expect(futA.terminatorId).to.not.equal(futB.terminatorId);
    const r = await futA.futurize<{ n: number }>('S33', 'edge', svc, 5000, { n: 21 }, (init) =>
      init.setTraceProperty('tp', 1),
    );
    expect(r.reply).to.deep.equal({ n: 42 });
    expect(r.context.traceId).to.equal('S33');
    expect(r.context.strings.get('side')).to.equal('s21');
    expect([...r.context.bytes.get('bin')!]).to.deep.equal([21]);
    expect(r.context.traceProperty('tp')).to.equal(1);
    const ne = await futA.futurizeNonessential<{ n: number }>('S33ne', 'edge', svc, { n: 1 });
    expect(ne.reply).to.deep.equal({ n: 2 });
    expect(futA.outstanding).to.equal(0);
  });

  it('S33: timeout rejects; late replies and replies after a restart are dropped; outstanding promises are capped', async () => {
    const e = env();
    const a = e.createFactory('A', { futurizerMaxOutstanding: 2 });
    const b = e.createFactory('B');
    const svc = e.uid('S33t.svc');
    const release = gate();
    const started = new Sink<number>();
    b.single<string, number>(svc, async (_c, n) => {
      started.push(n);
      await release.wait;
      return `late${n}`;
    });
    expect(await b.waitForReceiving(10_000)).to.equal(true);
    const fut = a.getFuturizer();
    // The futurizer's reply subscription must be bound first: futurize() waits for it only up to its own timeout,
    // and a 150 ms request not sent because the binding took longer (RabbitMQ under load) never reached `started`.
    expect(await a.waitForReceiving(10_000)).to.equal(true);
    const timedOut = fut.futurize('S33t', 'edge', svc, 150, 1).catch((err: unknown) => err);
    const pending = fut.futurize('S33t', 'edge', svc, 10_000, 2).catch((err: unknown) => err);
    const capped = await fut.futurize('S33t', 'edge', svc, 10_000, 3).catch((err: unknown) => err);
    expect(capped).to.be.instanceOf(MatsFuturizerCapacityError);
    expect(await timedOut).to.be.instanceOf(MatsFuturizerTimeoutError);
    expect(((await timedOut) as MatsFuturizerTimeoutError).code).to.equal(ErrorCode.MATS_FUTURIZER_TIMEOUT);
    await started.take(2);
    // "Restart" node A: the outstanding promise fails; a new factory with the same node name gets the replies.
    await a.stop(500);
    expect(((await pending) as { code?: string }).code).to.equal(ErrorCode.TRANSPORT_CLOSED);
    const metrics = new InMemoryMetrics();
    const a2: MatsFactory = e.createFactory('A', { metrics });
    const fut2 = a2.getFuturizer();
    expect(fut2.terminatorId).to.equal(fut.terminatorId);
    await a2.waitForReceiving(10_000);
    release.open();
    await waitFor(
      () => metrics.total('mats_exec_total_seconds', { stage: fut2.terminatorId, outcome: 'ok' }) >= 1,
      'late reply consumed',
      10_000,
    );
    expect(await e.broker.queueDepth(dlqName(e.prefix, fut2.terminatorId))).to.equal(0);
    expect(fut2.outstanding).to.equal(0);
  });
});
