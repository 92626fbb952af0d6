import { expect } from 'chai';
import { ProtocolError } from '../../../src/errors.ts';
import { decodeEnvelope, encodeEnvelope, toJson, type EnvelopeHead } from '../../../src/mats/MatsEnvelope.ts';

const head: EnvelopeHead = {
  v: 1,
  flowId: 'm_abcdefghij_Tk0',
  id: 'm_abcdefghij_Tk0_x',
  traceId: 'Web.order[cart:1]',
  init: { app: 'A', ver: '1', node: 'n1', id: 'init', ts: 1 },
  from: { app: 'A', ver: '1', node: 'n1', ts: 2 },
  callNo: 1,
  totalCallNo: 1,
  call: { type: 'REQUEST', from: 'init', to: { id: 'Svc', kind: 'queue' } },
  stack: [{ id: 'Term', kind: 'queue' }],
  keepTrace: 'COMPACT',
  dlqCount: 0,
};

describe('MatsEnvelope', () => {
  it('splices pre-serialized states and data verbatim and round-trips', () => {
    const json = encodeEnvelope(
      head,
      [
        { h: 0, json: '{"corr":"x"}' },
        { h: 1, json: '[1,2]' },
      ],
      '{"n":1,"s":"é\\"q"}',
    );
    const e = decodeEnvelope(json);
    expect(e.states).to.deep.equal([
      { h: 0, sto: { corr: 'x' } },
      { h: 1, sto: [1, 2] },
    ]);
    expect(e.data).to.deep.equal({ n: 1, s: 'é"q' });
    expect(e.traceId).to.equal(head.traceId);
    expect(e.stack).to.deep.equal(head.stack);
  });

  it('toJson turns undefined into null, so the envelope stays valid JSON', () => {
    expect(toJson(undefined)).to.equal('null');
    expect(decodeEnvelope(encodeEnvelope(head, [], toJson(undefined))).data).to.equal(null);
  });

  it('defaults keepTrace and dlqCount when absent', () => {
    const { keepTrace: _k, dlqCount: _d, ...rest } = head;
    const e = decodeEnvelope(encodeEnvelope(rest, [], '1'));
    expect(e.keepTrace).to.equal('COMPACT');
    expect(e.dlqCount).to.equal(0);
  });

  for (const [what, json] of [
    ['not JSON', '{'],
    ['not an object', '42'],
    ['another version', JSON.stringify({ ...head, v: 2, states: [], data: 1 })],
    [
      'a bad call type',
      JSON.stringify({ ...head, call: { ...head.call, type: 'FOO' }, states: [], data: 1 }),
    ],
    [
      'a bad channel',
      JSON.stringify({ ...head, stack: [{ id: 'x', kind: 'exchange' }], states: [], data: 1 }),
    ],
    ['no states', JSON.stringify({ ...head, data: 1 })],
    ['a non-numeric callNo', JSON.stringify({ ...head, callNo: '1', states: [], data: 1 })],
  ] as const) {
    it(`refuses ${what} with ProtocolError`, () => {
      expect(() => decodeEnvelope(json))
        .to.throw(ProtocolError)
        .with.property('code', 'PROTOCOL_ERROR');
    });
  }
});
