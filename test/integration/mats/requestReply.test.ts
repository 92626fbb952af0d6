import { expect } from 'chai';
import { ErrorCode } from '../../../src/errors.ts';
import { MatsIllegalCallError } from '../../../src/mats/MatsErrors.ts';
import { dlqName, MatsHeader } from '../../../src/mats/MatsWire.ts';
import { InMemoryMetrics } from '../../../src/metrics/InMemoryMetrics.ts';
import { describeMats, gate, Sink, waitFor, waitForDepth } from './matsTestKit.ts';
import { SpyTransport } from './SpyTransport.ts';

interface Sto {
  a?: number;
  i?: number;
  v?: number;
  node?: string;
}

describeMats('Mats request/reply and state (statements 4-16)', (env) => {
  it('S4: the next stage receives the reply with the STO as it was at request time, across nodes', async () => {
    const e = env();
    const nodeA = e.createFactory('A');
    const nodeB = e.createFactory('B');
    const nodeC = e.createFactory('C');
    const ep = e.uid('S4.ep');
    const leaf = e.uid('S4.leaf');
    const term = e.uid('S4.term');
    const leafGate = gate();
    const leafCalled = new Sink<number>();
    const results = new Sink<{ state: unknown; reply: unknown }>();
    const define = (f: typeof nodeA, node: string) =>
      f
        .staged<{ state: Sto; leaf: unknown; node: string }, Sto>(ep)
        .stage<number>((ctx, state, n) => {
          state.a = n;
          state.node = node;
          ctx.request(leaf, { n });
          state.a = -1; // not seen by the next stage: the STO was serialized at request time
        })
        .lastStage<{ leafReply: number }>((_ctx, state, reply) => ({
          state: { ...state },
          leaf: reply,
          node,
        }));
    const onA = define(nodeA, 'A');
    nodeC.single<{ leafReply: number }, { n: number }>(leaf, async (_ctx, inc) => {
      leafCalled.push(inc.n);
      await leafGate.wait;
      return { leafReply: inc.n * 10 };
    });
    nodeC.terminator(term, (_ctx, state, reply) => results.push({ state, reply }));
    expect(await nodeA.waitForReceiving(10_000)).to.equal(true);
    expect(await nodeC.waitForReceiving(10_000)).to.equal(true);
    await nodeC
      .getDefaultInitiator()
      .initiate((init) => init.traceId('S4').from('t').to(ep).replyTo(term, { T: 1 }).request(7));
    await leafCalled.first();
    // Stage 0 ran on A; now only B serves the endpoint, so the reply's stage must run on B.
    await onA.remove(2000);
    define(nodeB, 'B');
    expect(await nodeB.waitForReceiving(10_000)).to.equal(true);
    leafGate.open();
    const [r] = await results.take(1);
    expect(r!.state).to.deep.equal({ T: 1 });
    expect(r!.reply).to.deep.equal({ state: { a: 7, node: 'A' }, leaf: { leafReply: 70 }, node: 'B' });
  });

  it('S5: nested requests work 10 levels deep', async () => {
    const e = env();
    const f = e.createFactory('n');
    const base = e.uid('S5.lvl');
    const depth = 10;
    for (let i = 0; i < depth; i++) {
      f.staged<number, { level: number }>(`${base}.${i}`)
        .stage<number>((ctx, state, n) => {
          state.level = i;
          ctx.request(`${base}.${i + 1}`, n + 1);
        })
        .lastStage<number>((ctx, state, reply) => {
          if (state.level !== i || ctx.stackHeight !== i + 1)
            throw new Error(`wrong state/height at level ${i}`);
          return reply + 100;
        });
    }
    f.single<number, number>(`${base}.${depth}`, (ctx, n) => {
      if (ctx.stackHeight !== depth + 1) throw new Error(`wrong height ${ctx.stackHeight} at the leaf`);
      return n;
    });
    const term = e.uid('S5.term');
    const sink = new Sink<unknown>();
    f.terminator(term, (_ctx, _s, reply) => sink.push(reply));
    expect(await f.waitForReceiving(10_000)).to.equal(true);
    await f
      .getDefaultInitiator()
      .initiate((init) => init.traceId('S5').from('t').to(`${base}.0`).replyTo(term, null).request(0));
    expect(await sink.first(20_000)).to.equal(depth + depth * 100);
  });

  it('S5: a reply stack higher than 35 refuses and dead-letters (endless recursion)', async () => {
    const e = env();
    const f = e.createFactory('n');
    const rec = e.uid('S5.recurse');
    let calls = 0;
    f.staged<number, object>(rec)
      .stage<number>((ctx, _s, n) => {
        calls++;
        ctx.request(rec, n + 1);
      })
      .lastStage<number>((_ctx, _s, r) => r);
    expect(await f.waitForReceiving(10_000)).to.equal(true);
    await f.getDefaultInitiator().initiate((init) => init.traceId('S5r').from('t').to(rec).send(0));
    await waitForDepth(e.broker, dlqName(e.prefix, rec), 1, 20_000);
    const [dead] = await e.broker.drainQueue(dlqName(e.prefix, rec));
    expect(dead!.properties.headers[MatsHeader.DLQ_REFUSED]).to.equal('true');
    expect(String(dead!.properties.headers[MatsHeader.DLQ_EXCEPTION])).to.contain('Overflow');
    // Heights 0..35 were produced (36 calls); the 36th call's outgoing request would have height 36.
    expect(calls).to.equal(36);
  });

  it('S5: a total call number over 200 refuses and dead-letters (endless goTo loop)', async function () {
    this.timeout(30_000);
    const e = env();
    const f = e.createFactory('n');
    const loop = e.uid('S5.loop');
    let calls = 0;
    f.single<number, number>(loop, (ctx, n) => {
      calls++;
      ctx.goTo(loop, n + 1);
      return undefined as unknown as number;
    });
    expect(await f.waitForReceiving(10_000)).to.equal(true);
    await f.getDefaultInitiator().initiate((init) => init.traceId('S5g').from('t').to(loop).send(0));
    await waitForDepth(e.broker, dlqName(e.prefix, loop), 1, 25_000);
    const [dead] = await e.broker.drainQueue(dlqName(e.prefix, loop));
    expect(dead!.properties.headers[MatsHeader.DLQ_REFUSED]).to.equal('true');
    expect(calls).to.equal(200);
  });

  it('S6: reply with an empty reply stack is a silent no-op (send, and terminators)', async () => {
    const e = env();
    const metrics = new InMemoryMetrics();
    const f = e.createFactory('n', { metrics });
    const svc = e.uid('S6.svc');
    const term = e.uid('S6.term');
    const results = new Sink<unknown>();
    f.single<string, string>(svc, (ctx) => {
      results.push(ctx.reply('explicit'));
      return undefined as unknown as string;
    });
    f.terminator(term, (ctx) => {
      results.push(ctx.reply('from terminator' as never));
    });
    expect(await f.waitForReceiving(10_000)).to.equal(true);
    await f.getDefaultInitiator().initiate((init) => {
      init.traceId('S6').from('t').to(svc).send('x');
      init.to(term).send('y');
    });
    expect(await results.take(2)).to.deep.equal([undefined, undefined]);
    await waitFor(
      () => metrics.total('mats_exec_total_seconds', { outcome: 'ok' }) >= 2,
      'both stages completed',
    );
    expect(metrics.total('mats_out_messages_total', { stage: svc })).to.equal(0);
    expect(metrics.total('mats_out_messages_total', { stage: term })).to.equal(0);
    expect(await e.broker.queueDepth(dlqName(e.prefix, svc))).to.equal(0);
  });

  it('S7: illegal call combinations throw in the stage, which is rolled back', async () => {
    const e = env();
    const f = e.createFactory('n');
    const ep = e.uid('S7.ep');
    const leaf = e.uid('S7.leaf');
    const term = e.uid('S7.term');
    const errors = new Sink<{ mode: string; code: unknown; isIllegal: boolean }>();
    const received = new Sink<unknown>();
    type Mode =
      'reply+reply' | 'reply+request' | 'request+reply' | 'next+goTo' | 'nextDirect+reply' | 'goTo+next';
    f.staged<string, object>(ep)
      .stage<Mode>((ctx, _s, mode) => {
        try {
          switch (mode) {
            case 'reply+reply':
              ctx.reply('1');
              ctx.reply('2');
              break;
            case 'reply+request':
              ctx.reply('1');
              ctx.request(leaf, 1);
              break;
            case 'request+reply':
              ctx.request(leaf, 1);
              ctx.reply('1');
              break;
            case 'next+goTo':
              ctx.next(1);
              ctx.goTo(leaf, 1);
              break;
            case 'nextDirect+reply':
              ctx.nextDirect(1);
              ctx.reply('1');
              break;
            case 'goTo+next':
              ctx.goTo(leaf, 1);
              ctx.next(1);
              break;
          }
        } catch (err) {
          errors.push({
            mode,
            code: (err as { code?: unknown }).code,
            isIllegal: err instanceof MatsIllegalCallError,
          });
          throw err;
        }
      })
      .lastStage(() => 'never');
    f.single(leaf, () => 'leaf');
    f.terminator(term, (_c, _s, r) => received.push(r));
    expect(await f.waitForReceiving(10_000)).to.equal(true);
    const modes: Mode[] = [
      'reply+reply',
      'reply+request',
      'request+reply',
      'next+goTo',
      'nextDirect+reply',
      'goTo+next',
    ];
    for (const mode of modes) {
      await f
        .getDefaultInitiator()
        .initiate((init) => init.traceId(`S7.${mode}`).from('t').to(ep).replyTo(term, null).request(mode));
    }
    // Two attempts each, then the dead letter: nothing of the rolled-back attempts was sent.
    await waitForDepth(e.broker, dlqName(e.prefix, ep), modes.length, 15_000);
    const seen = await errors.take(modes.length * 2);
    for (const s of seen) {
      expect(s.isIllegal, s.mode).to.equal(true);
      expect(s.code).to.equal(ErrorCode.MATS_ILLEGAL_CALL);
    }
    expect(new Set(seen.map((s) => s.mode))).to.deep.equal(new Set(modes));
    expect(received.items).to.deep.equal([]);
    expect(await e.broker.queueDepth(dlqName(e.prefix, `${ep}.stage1`))).to.equal(0);
  });

  it('S8: several requests in one stage give one reply each, each with its own STO snapshot', async () => {
    const e = env();
    const f = e.createFactory('n');
    const ep = e.uid('S8.ep');
    const leaf = e.uid('S8.leaf');
    const term = e.uid('S8.term');
    const sink = new Sink<{ stateI: number; replyI: number }>();
    f.staged<{ stateI: number; replyI: number }, Sto>(ep)
      .stage<number>((ctx, state, count) => {
        for (let i = 0; i < count; i++) {
          state.i = i;
          ctx.request(leaf, { i });
        }
      })
      .lastStage<{ i: number }>((_ctx, state, reply) => ({ stateI: state.i!, replyI: reply.i }));
    f.single<{ i: number }, { i: number }>(leaf, (_ctx, inc) => ({ i: inc.i }));
    f.terminator<unknown, { stateI: number; replyI: number }>(term, (_c, _s, r) => sink.push(r));
    expect(await f.waitForReceiving(10_000)).to.equal(true);
    await f
      .getDefaultInitiator()
      .initiate((init) => init.traceId('S8').from('t').to(ep).replyTo(term, null).request(5));
    const replies = await sink.take(5);
    for (const r of replies) expect(r.stateI).to.equal(r.replyI);
    expect(replies.map((r) => r.replyI).sort()).to.deep.equal([0, 1, 2, 3, 4]);
  });

  it('S9: next goes through the broker with the current STO', async () => {
    const e = env();
    const f = e.createFactory('n');
    const ep = e.uid('S9.next');
    const term = e.uid('S9.term');
    const sink = new Sink<unknown>();
    f.staged<unknown, Sto>(ep)
      .stage<number>((ctx, state, n) => {
        state.a = n;
        ctx.next({ x: n + 1 });
        state.a = 99;
      })
      .lastStage<{ x: number }>((ctx, state, inc) => ({
        a: state.a,
        x: inc.x,
        callType: ctx.callType,
        from: ctx.fromStageId,
      }));
    f.terminator(term, (_c, _s, r) => sink.push(r));
    expect(await f.waitForReceiving(10_000)).to.equal(true);
    await f
      .getDefaultInitiator()
      .initiate((init) => init.traceId('S9').from('t').to(ep).replyTo(term, null).request(1));
    expect(await sink.first()).to.deep.equal({ a: 1, x: 2, callType: 'NEXT', from: ep });
  });

  it('S9: nextDirect runs the next stage in the same transaction by reference; its failure retries stage k', async () => {
    const e = env();
    const f = e.createFactory('n');
    const ep = e.uid('S9.direct');
    const term = e.uid('S9.dterm');
    const table = e.uid('s9_rows');
    await e.db.knex.schema.createTable(table, (t) => t.string('k').primary());
    const dto = { shared: true };
    const sink = new Sink<unknown>();
    let attemptsOfStage1 = 0;
    f.staged<unknown, { obj?: object }>(ep)
      .stage<string>(async (ctx, state, mode) => {
        const trx = await ctx.sql();
        await trx(table).insert({ k: `${mode}-${ctx.deliveryAttempt}` });
        state.obj = dto;
        ctx.nextDirect(dto);
      })
      .lastStage<typeof dto>(async (ctx, state, inc) => {
        attemptsOfStage1++;
        const trx = await ctx.sql();
        const rows = await trx<{ k: string }>(table).select('k');
        if (ctx.traceId === 'S9fail') throw new Error('stage 1 fails');
        return {
          sameDto: inc === dto,
          sameState: state.obj === dto,
          rows: rows.map((r) => r.k),
          stage: ctx.stageId,
        };
      });
    f.terminator(term, (_c, _s, r) => sink.push(r));
    expect(await f.waitForReceiving(10_000)).to.equal(true);
    await f
      .getDefaultInitiator()
      .initiate((init) => init.traceId('S9ok').from('t').to(ep).replyTo(term, null).request('ok'));
    expect(await sink.first()).to.deep.equal({
      sameDto: true,
      sameState: true,
      rows: ['ok-1'],
      stage: `${ep}.stage1`,
    });
    await f
      .getDefaultInitiator()
      .initiate((init) => init.traceId('S9fail').from('t').to(ep).replyTo(term, null).request('fail'));
    // Stage k's incoming message is the one dead-lettered, after 2 attempts; its rows are rolled back.
    await waitForDepth(e.broker, dlqName(e.prefix, ep), 1);
    expect(await e.broker.queueDepth(dlqName(e.prefix, `${ep}.stage1`))).to.equal(0);
    expect(attemptsOfStage1).to.equal(3);
    const rows = await e.db.knex<{ k: string }>(table).select('k');
    expect(rows.map((r) => r.k)).to.deep.equal(['ok-1']);
  });

  it("S10: goTo makes the target's reply go to the current caller", async () => {
    const e = env();
    const f = e.createFactory('n');
    const ep = e.uid('S10.ep');
    const target = e.uid('S10.target');
    const term = e.uid('S10.term');
    const sink = new Sink<unknown>();
    let stage1Reached = false;
    f.staged<string, object>(ep)
      .stage<string>((ctx, _s, s) => {
        ctx.goTo(target, `${s}>goTo`, { initial: true });
      })
      .lastStage(() => {
        stage1Reached = true;
        return 'wrong';
      });
    f.staged<string, { initial?: boolean }>(target).lastStage<string>(
      (_ctx, state, s) => `${s}>target(${String(state.initial)})`,
    );
    f.terminator(term, (ctx, state, r) => sink.push({ r, state, from: ctx.fromStageId }));
    expect(await f.waitForReceiving(10_000)).to.equal(true);
    await f
      .getDefaultInitiator()
      .initiate((init) => init.traceId('S10').from('t').to(ep).replyTo(term, 'T').request('in'));
    expect(await sink.first()).to.deep.equal({ r: 'in>goTo>target(true)', state: 'T', from: target });
    expect(stage1Reached).to.equal(false);
  });

  it('S11: DTOs and STOs are serialized at call time', async () => {
    const e = env();
    const f = e.createFactory('n');
    const ep = e.uid('S11.ep');
    const leaf = e.uid('S11.leaf');
    const term = e.uid('S11.term');
    const leafGot = new Sink<unknown>();
    const sink = new Sink<unknown>();
    f.staged<unknown, Sto>(ep)
      .stage<number>((ctx, state) => {
        const dto = { v: 1 };
        state.v = 1;
        ctx.request(leaf, dto);
        dto.v = 2;
        state.v = 2;
      })
      .stage<number>((ctx, state, leafReply) => {
        const reply = { state: state.v, leafReply };
        ctx.reply(reply);
        reply.state = -1;
      })
      .finishSetup();
    f.single<number, { v: number }>(leaf, (_c, inc) => {
      leafGot.push(inc);
      return inc.v * 10;
    });
    f.terminator(term, (_c, _s, r) => sink.push(r));
    expect(await f.waitForReceiving(10_000)).to.equal(true);
    await f.getDefaultInitiator().initiate((init) => {
      const dto = { start: true };
      init.traceId('S11').from('t').to(ep).replyTo(term, null).request(dto);
      dto.start = false;
    });
    expect(await leafGot.first()).to.deep.equal({ v: 1 });
    expect(await sink.first()).to.deep.equal({ state: 1, leafReply: 10 });
  });

  it("S12: replyTo(T, sto) delivers the final reply and sto to T; send without replyTo ends at the target's reply", async () => {
    const e = env();
    const metrics = new InMemoryMetrics();
    const f = e.createFactory('n', { metrics });
    const svc = e.uid('S12.svc');
    const term = e.uid('S12.term');
    const sink = new Sink<unknown>();
    let svcRuns = 0;
    f.single<string, string>(svc, (_c, s) => {
      svcRuns++;
      return `${s}!`;
    });
    f.terminator(term, (ctx, state, r) => sink.push({ state, r, type: ctx.callType }));
    expect(await f.waitForReceiving(10_000)).to.equal(true);
    await f
      .getDefaultInitiator()
      .initiate((init) => init.traceId('S12').from('t').to(svc).replyTo(term, { corr: 'x' }).request('a'));
    expect(await sink.first()).to.deep.equal({ state: { corr: 'x' }, r: 'a!', type: 'REPLY' });
    await f.getDefaultInitiator().initiate((init) => init.traceId('S12s').from('t').to(svc).send('b'));
    await waitFor(() => metrics.total('mats_exec_total_seconds', { stage: svc }) >= 2, 'send processed');
    expect(svcRuns).to.equal(2);
    expect(metrics.total('mats_out_messages_total', { stage: svc })).to.equal(1);
    expect(sink.items).to.have.length(1);
  });

  it('S13: traceId, from and to are mandatory and a TTL needs nonPersistent; nothing is sent', async () => {
    const e = env();
    const f = e.createFactory('n');
    f.holdEndpointsUntilFactoryIsStarted();
    const term = e.uid('S13.term');
    f.terminator(term, () => undefined);
    const init = f.getDefaultInitiator();
    const cases: Array<[string, Parameters<typeof init.initiate>[0]]> = [
      ['traceId', (i) => void i.from('t').to(term).send(1)],
      ['from', (i) => void i.traceId('x').to(term).send(1)],
      ['to', (i) => void i.traceId('x').from('t').send(1)],
      ['ttl', (i) => void i.traceId('x').from('t').to(term).timeToLive(1000).send(1)],
      ['request without replyTo', (i) => void i.traceId('x').from('t').to(term).request(1)],
      // A valid message followed by an invalid one: all messages of an initiation are sent together, or none.
      [
        'second invalid',
        (i) => {
          i.traceId('x').from('t').to(term).send(1);
          i.send(2); // `to` was reset by the first send
        },
      ],
    ];
    for (const [what, fn] of cases) {
      let error: unknown;
      await init.initiate(fn).catch((err: unknown) => (error = err));
      expect(error, what).to.be.instanceOf(MatsIllegalCallError);
      expect((error as MatsIllegalCallError).code).to.equal(ErrorCode.MATS_ILLEGAL_CALL);
    }
    expect(await e.broker.queueDepth(`${e.prefix}${term}`)).to.equal(0);
  });

  it('S13: an initiation that produced no messages does no broker work', async () => {
    const e = env();
    const spy = new SpyTransport(e.createTransport('spy'));
    const f = e.createFactory('n', { transport: spy });
    expect(await f.getDefaultInitiator().initiate(() => undefined)).to.deep.equal([]);
    expect(
      await f.getOrCreateInitiator('S13.named').initiate((init) => void init.traceId('x').from('t')),
    ).to.deep.equal([]);
    expect(spy.events).to.deep.equal([]);
  });

  it('S14: a child flow gets parent|child (or !child as-is), inherits trace properties, and is sent only on commit', async () => {
    const e = env();
    const metrics = new InMemoryMetrics();
    const f = e.createFactory('n', { metrics });
    const ep = e.uid('S14.ep');
    const term = e.uid('S14.term');
    const sink = new Sink<{ traceId: string; p: unknown; q: unknown; body: unknown }>();
    f.single<null, string>(ep, async (ctx, mode) => {
      ctx.setTraceProperty('p', { fromParent: true });
      await ctx.initiate((init) =>
        init.traceId('child').to(term).setTraceProperty('q', 2).send(`${mode}:child`),
      );
      await ctx.initiate((init) => init.traceId('!solo').from('explicit').to(term).send(`${mode}:solo`));
      if (mode === 'fail') throw new Error('stage fails after initiating');
      return null;
    });
    f.terminator(term, (ctx, _s, body) =>
      sink.push({ traceId: ctx.traceId, p: ctx.getTraceProperty('p'), q: ctx.getTraceProperty('q'), body }),
    );
    expect(await f.waitForReceiving(10_000)).to.equal(true);
    await f.getDefaultInitiator().initiate((init) => init.traceId('fail').from('t').to(ep).send('fail'));
    await waitForDepth(e.broker, dlqName(e.prefix, ep), 1);
    await f.getDefaultInitiator().initiate((init) => init.traceId('parent').from('t').to(ep).send('ok'));
    const got = await sink.take(2);
    expect(got).to.deep.include({ traceId: 'parent|child', p: { fromParent: true }, q: 2, body: 'ok:child' });
    expect(got).to.deep.include({ traceId: 'solo', p: { fromParent: true }, q: undefined, body: 'ok:solo' });
    await waitFor(() => metrics.total('mats_exec_total_seconds', { stage: term }) >= 2, 'terminator done');
    expect(sink.items.filter((s) => String(s.body).startsWith('fail'))).to.deep.equal([]);
  });

  it('S15: the default initiator joins the stage transaction; a named initiator sends at once, even on failure', async () => {
    const e = env();
    const f = e.createFactory('n');
    const ep = e.uid('S15.ep');
    const term = e.uid('S15.term');
    const sink = new Sink<{ kind: string; traceId: string }>();
    f.single<null, string>(ep, async (_ctx, mode) => {
      await f
        .getDefaultInitiator()
        .initiate((init) => init.traceId('d').from('x').to(term).send(`default:${mode}`));
      await f
        .getOrCreateInitiator('S15.named')
        .initiate((init) => init.traceId('n').from('x').to(term).send(`named:${mode}`));
      if (mode === 'fail') throw new Error('fails');
      return null;
    });
    f.terminator<unknown, string>(term, (ctx, _s, kind) => sink.push({ kind, traceId: ctx.traceId }));
    expect(await f.waitForReceiving(10_000)).to.equal(true);
    await f.getDefaultInitiator().initiate((init) => init.traceId('F').from('t').to(ep).send('fail'));
    await waitForDepth(e.broker, dlqName(e.prefix, ep), 1);
    await f.getDefaultInitiator().initiate((init) => init.traceId('OK').from('t').to(ep).send('ok'));
    const got = await sink.take(4);
    await waitFor(() => sink.items.length >= 4, 'all');
    const kinds = got.map((g) => g.kind).sort();
    // The failing stage ran twice: two named sends, no default send; the successful one sent both.
    expect(kinds).to.deep.equal(['default:ok', 'named:fail', 'named:fail', 'named:ok']);
    expect(got.find((g) => g.kind === 'default:ok')!.traceId).to.equal('OK|d');
    expect(got.find((g) => g.kind === 'named:ok')!.traceId).to.equal('n');
  });

  it('S15: the default initiator joins the stage from a plain lambda returning a promise, after an await', async () => {
    const e = env();
    const f = e.createFactory('n');
    const ep = e.uid('S15p.ep');
    const term = e.uid('S15p.term');
    const sink = new Sink<{ kind: string; traceId: string }>();
    // As the MatsSocket server registers its reply terminator: a plain arrow handing over to an async method.
    const later = async (mode: string): Promise<null> => {
      await new Promise((resolve) => setImmediate(resolve));
      await f
        .getDefaultInitiator()
        .initiate((init) => init.traceId('d').from('x').to(term).send(`default:${mode}`));
      if (mode === 'fail') throw new Error('fails');
      return null;
    };
    f.single<null, string>(ep, (_ctx, mode) => later(mode));
    f.terminator<unknown, string>(term, (ctx, _s, kind) => sink.push({ kind, traceId: ctx.traceId }));
    expect(await f.waitForReceiving(10_000)).to.equal(true);
    await f.getDefaultInitiator().initiate((init) => init.traceId('F').from('t').to(ep).send('fail'));
    await waitForDepth(e.broker, dlqName(e.prefix, ep), 1);
    await f.getDefaultInitiator().initiate((init) => init.traceId('OK').from('t').to(ep).send('ok'));
    const [got] = await sink.take(1);
    // Joined: the failing runs sent nothing, the successful one sent its message as a child flow of the stage.
    expect(got).to.deep.equal({ kind: 'default:ok', traceId: 'OK|d' });
  });

  it('S16: trace properties stay visible in later stages; sideloads reach only the next message', async () => {
    const e = env();
    const f = e.createFactory('n');
    const ep = e.uid('S16.ep');
    const leaf = e.uid('S16.leaf');
    const term = e.uid('S16.term');
    const seen: Record<string, unknown> = {};
    const sink = new Sink<unknown>();
    const snapshot = (ctx: {
      getTraceProperty(n: string): unknown;
      getStringKeys(): string[];
      getBytesKeys(): string[];
      getString(k: string): string | undefined;
      getBytes(k: string): Buffer | undefined;
    }) => ({
      a: ctx.getTraceProperty('a'),
      b: ctx.getTraceProperty('b'),
      c: ctx.getTraceProperty('c'),
      strings: ctx.getStringKeys().map((k) => `${k}=${ctx.getString(k)}`),
      bytes: ctx.getBytesKeys().map((k) => `${k}=${[...ctx.getBytes(k)!].join(',')}`),
    });
    f.staged<unknown, object>(ep)
      .stage((ctx) => {
        seen.stage0 = snapshot(ctx);
        ctx.setTraceProperty('b', 'B');
        ctx.addBytes('bin', new Uint8Array([1, 2, 3]));
        ctx.request(leaf, null);
      })
      .lastStage((ctx) => {
        seen.stage1 = snapshot(ctx);
        return 'done';
      });
    f.single(leaf, (ctx) => {
      seen.leaf = snapshot(ctx);
      ctx.setTraceProperty('c', 3);
      return 'leaf';
    });
    f.terminator(term, (ctx) => {
      seen.term = snapshot(ctx);
      sink.push(1);
    });
    expect(await f.waitForReceiving(10_000)).to.equal(true);
    await f
      .getDefaultInitiator()
      .initiate((init) =>
        init
          .traceId('S16')
          .from('t')
          .to(ep)
          .replyTo(term, null)
          .setTraceProperty('a', 'A')
          .addString('s', 'str')
          .request(null),
      );
    await sink.first();
    expect(seen.stage0).to.deep.equal({ a: 'A', b: undefined, c: undefined, strings: ['s=str'], bytes: [] });
    expect(seen.leaf).to.deep.equal({ a: 'A', b: 'B', c: undefined, strings: [], bytes: ['bin=1,2,3'] });
    expect(seen.stage1).to.deep.equal({ a: 'A', b: 'B', c: 3, strings: [], bytes: [] });
    expect(seen.term).to.deep.equal({ a: 'A', b: 'B', c: 3, strings: [], bytes: [] });
  });
});
