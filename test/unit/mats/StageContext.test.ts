import { expect } from 'chai';
import {
  currentStageContext,
  runInStageContext,
  runOutsideStageContext,
} from '../../../src/mats/ambientContext.ts';
import { buildInitiation, IncomingFlow } from '../../../src/mats/EnvelopeBuilder.ts';
import { InitiateBuilder } from '../../../src/mats/InitiateBuilder.ts';
import { LazyTransaction } from '../../../src/mats/LazyTransaction.ts';
import { decodeEnvelope } from '../../../src/mats/MatsEnvelope.ts';
import { MatsIllegalCallError, MatsRefuseMessageError } from '../../../src/mats/MatsErrors.ts';
import {
  resolveMatsFactoryOptions,
  resolveStageOptions,
  type MatsFactoryOptions,
} from '../../../src/mats/MatsFactoryOptions.ts';
import { MatsRuntime } from '../../../src/mats/MatsRuntime.ts';
import { OutgoingCollector } from '../../../src/mats/OutgoingCollector.ts';
import { StageContextImpl, type StageRun } from '../../../src/mats/StageContextImpl.ts';
import type { StageDefinition } from '../../../src/mats/StageDefinition.ts';
import { silentLogger } from '../../../src/logging.ts';
import { fakeTransport } from './fakeTransport.ts';

function runtime(extra: Partial<MatsFactoryOptions> = {}): MatsRuntime {
  return new MatsRuntime(
    resolveMatsFactoryOptions({
      appName: 'App',
      appVersion: '1',
      nodeName: 'n1',
      transport: fakeTransport,
      ...extra,
    }),
  );
}

function stages(rt: MatsRuntime): [StageDefinition, StageDefinition] {
  const mk = (index: number): StageDefinition => ({
    endpointId: 'E',
    stageId: index === 0 ? 'E' : `E.stage${index}`,
    index,
    next: undefined,
    lambda: () => undefined,
    autoReply: index === 1,
    source: 'queue',
    options: resolveStageOptions(rt.options, undefined, undefined),
    origin: '',
    logger: silentLogger,
  });
  const s0 = mk(0);
  const s1 = mk(1);
  s0.next = s1;
  return [s0, s1];
}

function incoming(
  rt: MatsRuntime,
  opts: { replyTo?: boolean; totalCallNo?: number; traceId?: string } = {},
): IncomingFlow {
  const p = buildInitiation({
    sender: rt.sender,
    type: opts.replyTo === false ? 'SEND' : 'REQUEST',
    flowId: 'm_flow000000_T1',
    matsMessageId: 'm_flow000000_T1_in',
    parentMessageId: undefined,
    parentTotalCallNo: (opts.totalCallNo ?? 1) - 1,
    causeMessageId: undefined,
    traceId: opts.traceId ?? 'parent',
    initiatorId: 'web',
    to: { id: 'E', kind: 'queue' },
    replyTo: opts.replyTo === false ? undefined : { channel: { id: 'T', kind: 'queue' }, stoJson: '{}' },
    initialTargetStoJson: undefined,
    flags: { interactive: false, nonPersistent: false, noAudit: false, ttlMs: undefined },
    keepTrace: 'COMPACT',
    traceProperties: { inherited: 'yes' },
    sideloads: undefined,
    dataJson: '1',
    now: 5,
  });
  return new IncomingFlow(decodeEnvelope(p.json));
}

function run(rt: MatsRuntime, flow: IncomingFlow): StageRun {
  return {
    runtime: rt,
    incoming: flow,
    collector: new OutgoingCollector(`${flow.envelope.id}|E`),
    tx: new LazyTransaction(undefined),
    deliveryAttempt: 1,
    brokerMessageId: flow.envelope.id,
    traceProperties: { ...(flow.envelope.tp ?? {}) },
    overflow: undefined,
  };
}

describe('StageContextImpl (call combinations, traceIds, ambient context)', () => {
  const rt = runtime();
  const [s0, s1] = stages(rt);

  it('allows several requests, or exactly one of reply/next/nextDirect/goTo', () => {
    const ok = new StageContextImpl(run(rt, incoming(rt)), s0, {});
    ok.request('A', 1);
    ok.request('B', 2);
    for (const second of [
      (c: StageContextImpl) => c.reply(1),
      (c: StageContextImpl) => c.next(1),
      (c: StageContextImpl) => c.nextDirect(1),
      (c: StageContextImpl) => c.goTo('X', 1),
    ]) {
      expect(() => second(ok)).to.throw(MatsIllegalCallError);
    }
    const firsts = [
      (c: StageContextImpl) => c.reply(1),
      (c: StageContextImpl) => c.next(1),
      (c: StageContextImpl) => c.nextDirect(1),
      (c: StageContextImpl) => c.goTo('X', 1),
    ];
    for (const first of firsts) {
      for (const second of [...firsts, (c: StageContextImpl) => c.request('A', 1)]) {
        const ctx = new StageContextImpl(run(rt, incoming(rt)), s0, {});
        first(ctx);
        expect(() => second(ctx))
          .to.throw(MatsIllegalCallError)
          .with.property('code', 'MATS_ILLEGAL_CALL');
      }
    }
  });

  it('request/next/nextDirect need a next stage; reply on an empty stack is a silent no-op', () => {
    const last = new StageContextImpl(run(rt, incoming(rt)), s1, {});
    expect(() => last.request('A', 1)).to.throw(MatsIllegalCallError);
    expect(() => last.next(1)).to.throw(MatsIllegalCallError);
    const noStack = new StageContextImpl(run(rt, incoming(rt, { replyTo: false })), s1, {});
    expect(noStack.reply('x')).to.equal(undefined);
  });

  it('ids of outgoing messages are deterministic per incoming message and position', () => {
    const flow = incoming(rt);
    const a = new StageContextImpl(run(rt, flow), s0, {});
    const b = new StageContextImpl(run(rt, flow), s0, {});
    const idsA = [a.request('A', 1), a.request('B', 1)];
    const idsB = [b.request('A', 99), b.request('B', 98)];
    expect(idsA).to.deep.equal(idsB);
    expect(idsA[0]).to.match(/^m_flow000000_T1_[A-Za-z0-9]{8}$/);
    expect(idsA[0]).to.not.equal(idsA[1]);
  });

  it('overflow refuses the incoming message even when the lambda catches the error', () => {
    const small = runtime({ maxStackHeight: 1 });
    const [t0] = stages(small);
    const r = run(small, incoming(small));
    const ctx = new StageContextImpl(r, t0, {});
    expect(() => ctx.request('A', 1)).to.throw(MatsRefuseMessageError);
    expect(r.overflow).to.be.instanceOf(MatsRefuseMessageError);
    const calls = runtime({ maxTotalCallNumber: 3 });
    const [u0] = stages(calls);
    const r2 = run(calls, incoming(calls, { totalCallNo: 3 }));
    expect(() => new StageContextImpl(r2, u0, {}).goTo('X', 1)).to.throw(MatsRefuseMessageError);
  });

  it('child flows: traceId parent|child, "!" opts out, trace properties inherited, from defaults to the stage', async () => {
    const r = run(rt, incoming(rt, { traceId: 'Web.order' }));
    const ctx = new StageContextImpl(r, s0, {});
    ctx.setTraceProperty('set', 1);
    await ctx.initiate((init) => {
      init.traceId('child').to('X').send(1);
      init.traceId('!solo').to('X').send(2);
      init.traceId('').to('X').send(3);
    });
    const sent = r.collector.messages.map((m) => decodeEnvelope(m.json));
    expect(sent.map((e) => e.traceId)).to.deep.equal(['Web.order|child', 'solo', 'Web.order|']);
    expect(sent[0]!.tp).to.deep.equal({ inherited: 'yes', set: 1 });
    expect(sent[0]!.init.id).to.equal('E');
    expect(sent[0]!.parentId).to.equal(r.incoming.envelope.id);
    expect(sent[0]!.totalCallNo).to.equal(r.incoming.envelope.totalCallNo + 1);
  });

  it('outside stages the factory traceId modifier applies', () => {
    const mod = runtime({ initiateTraceIdModifier: (t) => `req42+${t}` });
    const collector = new OutgoingCollector(undefined);
    const b = new InitiateBuilder(
      mod,
      collector,
      undefined,
      () => Promise.reject(new Error('no db')),
      silentLogger,
    );
    b.traceId('t').from('f').to('X').send(1);
    expect(decodeEnvelope(collector.messages[0]!.json).traceId).to.equal('req42+t');
  });

  it('currentStageContext() is the context only while the lambda runs', async () => {
    const ctx = new StageContextImpl(run(rt, incoming(rt)), s0, {});
    expect(currentStageContext()).to.equal(undefined);
    let later: Promise<unknown> | undefined;
    await runInStageContext(ctx.ambientSlot, async () => {
      expect(currentStageContext()).to.equal(ctx);
      await Promise.resolve();
      expect(currentStageContext()).to.equal(ctx);
      later = new Promise((resolve) => setTimeout(() => resolve(currentStageContext()), 5));
    });
    ctx.deactivate();
    expect(await later).to.equal(undefined);
    expect(() => ctx.reply(1)).to.throw(MatsIllegalCallError);
  });

  it('a plain function returning a promise has the context in its callbacks until the lambda ends', async () => {
    const ctx = new StageContextImpl(run(rt, incoming(rt)), s0, {});
    let outside: unknown = 'unset';
    const result = runInStageContext(ctx.ambientSlot, () =>
      Promise.resolve().then(() => {
        runOutsideStageContext(() => (outside = currentStageContext()));
        return currentStageContext();
      }),
    );
    expect(await result).to.equal(ctx);
    expect(outside).to.equal(undefined);
  });

  it('work a lambda leaves behind does not keep its context alive (the store slot is emptied)', () => {
    const ctx = new StageContextImpl(run(rt, incoming(rt)), s0, {});
    const slot = ctx.ambientSlot;
    runInStageContext(slot, () => undefined);
    expect(slot.current).to.equal(ctx);
    ctx.deactivate();
    expect(slot.current).to.equal(undefined);
  });
});
