import { expect } from 'chai';
import { encodeFrame, RawJson } from '../../../src/protocol/encodeFrame.ts';
import { parseClientFrame } from '../../../src/protocol/parseClientFrame.ts';

describe('encodeFrame()', () => {
  it('encodes a JSON array, also for a single envelope', () => {
    expect(encodeFrame([{ t: 'WELCOME', sid: 'S' }])).to.equal('[{"t":"WELCOME","sid":"S"}]');
    expect(encodeFrame([])).to.equal('[]');
  });

  it('omits undefined and null envelope fields, including a null msg', () => {
    const text = encodeFrame([
      { t: 'RESOLVE', cmid: '4', tid: 't', smid: undefined, msg: null, desc: undefined } as never,
    ]);
    expect(text).to.equal('[{"t":"RESOLVE","cmid":"4","tid":"t"}]');
  });

  it('keeps nulls inside msg', () => {
    const text = encodeFrame([{ t: 'SEND', eid: 'e', tid: 't', cmid: '1', msg: { a: null, b: [null] } }]);
    expect(JSON.parse(text)).to.deep.equal([
      { t: 'SEND', eid: 'e', tid: 't', cmid: '1', msg: { a: null, b: [null] } },
    ]);
  });

  it('omits absent fields inside debug', () => {
    const text = encodeFrame([
      {
        t: 'PUB',
        eid: 'e',
        smid: 's',
        tid: 't',
        debug: { resd: 1, smcts: 5, smcnn: undefined, mscnn: null },
      } as never,
    ]);
    expect(JSON.parse(text)).to.deep.equal([
      { t: 'PUB', eid: 'e', smid: 's', tid: 't', debug: { resd: 1, smcts: 5 } },
    ]);
  });

  it('keeps falsy msg values other than null', () => {
    for (const msg of [0, false, '']) {
      const [envelope] = JSON.parse(
        encodeFrame([{ t: 'SEND', eid: 'e', tid: 't', cmid: '1', msg }]),
      ) as object[];
      expect(envelope).to.have.property('msg', msg);
    }
  });

  it('embeds RawJson text unchanged', () => {
    const text = encodeFrame([
      { t: 'SEND', eid: 'e', tid: 't', smid: 's', msg: new RawJson('{"n":1.0,"s":"\\u00e6"}') },
    ]);
    expect(text).to.equal('[{"t":"SEND","eid":"e","tid":"t","smid":"s","msg":{"n":1.0,"s":"\\u00e6"}}]');
  });

  it('leaves out values JSON cannot represent', () => {
    const text = encodeFrame([{ t: 'SEND', eid: 'e', tid: 't', cmid: '1', msg: () => 1 }]);
    expect(text).to.equal('[{"t":"SEND","eid":"e","tid":"t","cmid":"1"}]');
  });

  it('round-trips through the strict parser', () => {
    const envelopes = [
      { t: 'HELLO', clv: 'c', an: 'a', av: 'v', auth: 'x' },
      { t: 'REQUEST', eid: 'e', tid: 't', cmid: '0', to: 45000, rd: 1, msg: { q: [1, 2] } },
      { t: 'ACK2', ids: ['1', '2'] },
    ] as const;
    expect(parseClientFrame(encodeFrame(envelopes))).to.deep.equal(envelopes);
  });
});
