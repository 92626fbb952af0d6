import { expect } from 'chai';
import {
  buildHop,
  buildInitiation,
  hopCounters,
  IncomingFlow,
  type HopParams,
  type InitiationParams,
} from '../../../src/mats/EnvelopeBuilder.ts';
import { decodeEnvelope, type MatsEnvelope } from '../../../src/mats/MatsEnvelope.ts';

const sender = { appName: 'App', appVersion: '2', nodeName: 'n1', queuePrefix: 'mats.' };
const noFlags = { interactive: false, nonPersistent: false, noAudit: false, ttlMs: undefined };

function initiation(overrides: Partial<InitiationParams> = {}): MatsEnvelope {
  const p = buildInitiation({
    sender,
    type: 'REQUEST',
    flowId: 'm_f_T1',
    matsMessageId: 'm_f_T1_0',
    parentMessageId: undefined,
    parentTotalCallNo: 0,
    causeMessageId: undefined,
    traceId: 'tr',
    initiatorId: 'web',
    to: { id: 'E', kind: 'queue' },
    replyTo: { channel: { id: 'Term', kind: 'queue' }, stoJson: '{"corr":1}' },
    initialTargetStoJson: '{"init":true}',
    flags: noFlags,
    keepTrace: 'COMPACT',
    traceProperties: { a: 1 },
    sideloads: { strings: new Map([['s', 'v']]), bytes: new Map([['b', new Uint8Array([1, 2])]]) },
    dataJson: '"hello"',
    now: 10,
    ...overrides,
  });
  return decodeEnvelope(p.json);
}

function hop(
  incoming: MatsEnvelope,
  overrides: Partial<HopParams> & Pick<HopParams, 'type'>,
): MatsEnvelope | undefined {
  const p = buildHop({
    sender,
    incoming: new IncomingFlow(incoming),
    fromStageId: 'E',
    matsMessageId: `${incoming.flowId}_n`,
    toId: 'Leaf',
    replyStageId: 'E.stage1',
    currentStoJson: '{"cur":1}',
    initialTargetStoJson: undefined,
    traceProperties: incoming.tp,
    sideloads: undefined,
    dataJson: '1',
    now: 20,
    ...overrides,
  });
  return p && decodeEnvelope(p.json);
}

describe('EnvelopeBuilder (reply stack and states)', () => {
  it('an initiated request carries the replyTo channel and its STO at height 0, the initial STO at height 1', () => {
    const e = initiation();
    expect(e.stack).to.deep.equal([{ id: 'Term', kind: 'queue' }]);
    expect(e.states).to.deep.equal([
      { h: 0, sto: { corr: 1 } },
      { h: 1, sto: { init: true } },
    ]);
    expect(new IncomingFlow(e).stateAtHeight()).to.deep.equal({ init: true });
    expect(e).to.include({ callNo: 1, totalCallNo: 1, traceId: 'tr' });
    expect(e.sl).to.deep.equal({ s: { s: 'v' }, b: { b: 'AQI=' } });
    expect(e.tp).to.deep.equal({ a: 1 });
    expect(e.parentId).to.equal(undefined);
  });

  it('REQUEST pushes the next stage and stores the current STO where the reply lands; REPLY pops it', () => {
    const start = initiation();
    const req = hop(start, { type: 'REQUEST', initialTargetStoJson: '{"leaf":1}' })!;
    expect(req.stack.map((c) => c.id)).to.deep.equal(['Term', 'E.stage1']);
    expect(req.states).to.deep.equal([
      { h: 0, sto: { corr: 1 } },
      { h: 1, sto: { cur: 1 } },
      { h: 2, sto: { leaf: 1 } },
    ]);
    expect(req.call.to).to.deep.equal({ id: 'Leaf', kind: 'queue' });
    expect(req).to.include({ callNo: 2, totalCallNo: 2, parentId: start.id });
    const reply = hop(req, { type: 'REPLY', fromStageId: 'Leaf' })!;
    expect(reply.call.to).to.deep.equal({ id: 'E.stage1', kind: 'queue' });
    expect(reply.stack.map((c) => c.id)).to.deep.equal(['Term']);
    expect(new IncomingFlow(reply).stateAtHeight()).to.deep.equal({ cur: 1 });
    const final = hop(reply, { type: 'REPLY', fromStageId: 'E.stage1' })!;
    expect(final.call.to.id).to.equal('Term');
    expect(final.stack).to.deep.equal([]);
    expect(new IncomingFlow(final).stateAtHeight()).to.deep.equal({ corr: 1 });
    expect(hop(final, { type: 'REPLY', fromStageId: 'Term' })).to.equal(undefined);
  });

  it('NEXT keeps the stack and carries the current STO; GOTO keeps the stack and starts the target fresh', () => {
    const start = initiation({ initialTargetStoJson: undefined });
    const next = hop(start, { type: 'NEXT', toId: 'E.stage1' })!;
    expect(next.stack).to.deep.equal(start.stack);
    expect(new IncomingFlow(next).stateAtHeight()).to.deep.equal({ cur: 1 });
    const goTo = hop(start, { type: 'GOTO', toId: 'Other' })!;
    expect(goTo.stack).to.deep.equal(start.stack);
    expect(new IncomingFlow(goTo).stateAtHeight()).to.equal(undefined);
    const goToSto = hop(start, { type: 'GOTO', toId: 'Other', initialTargetStoJson: '{"x":1}' })!;
    expect(new IncomingFlow(goToSto).stateAtHeight()).to.deep.equal({ x: 1 });
  });

  it('flags are sticky; keepTrace FULL accumulates history', () => {
    const start = initiation({
      flags: { interactive: true, nonPersistent: true, noAudit: true, ttlMs: 500 },
      keepTrace: 'FULL',
    });
    const p = buildHop({
      sender,
      incoming: new IncomingFlow(start),
      type: 'REQUEST',
      fromStageId: 'E',
      matsMessageId: 'x',
      toId: 'Leaf',
      replyStageId: 'E.stage1',
      currentStoJson: '{}',
      initialTargetStoJson: undefined,
      traceProperties: undefined,
      sideloads: undefined,
      dataJson: '1',
      now: 20,
    })!;
    expect(p.target).to.deep.equal({ kind: 'queue', name: 'mats.Leaf:i' });
    expect(p).to.include({ interactive: true, nonPersistent: true, noAudit: true, ttlMs: 500 });
    const e = decodeEnvelope(p.json);
    expect(e.history).to.have.length(1);
    expect(e.history![0]).to.include({ type: 'REQUEST', from: 'web', to: 'E' });
  });

  it('hopCounters gives the outgoing height and total call number', () => {
    const start = new IncomingFlow(initiation());
    expect(hopCounters(start, 'REQUEST')).to.deep.equal({ height: 2, totalCallNo: 2 });
    expect(hopCounters(start, 'REPLY')).to.deep.equal({ height: 0, totalCallNo: 2 });
    expect(hopCounters(start, 'NEXT')).to.deep.equal({ height: 1, totalCallNo: 2 });
  });

  it('a child flow continues the total call number', () => {
    const child = initiation({ parentTotalCallNo: 7, parentMessageId: 'p' });
    expect(child).to.include({ callNo: 1, totalCallNo: 8, parentId: 'p' });
  });
});
