import { expect } from 'chai';
import { ProtocolError } from '../../../src/errors.ts';
import { parseServerFrame } from '../../../src/protocol/parseServerFrame.ts';

describe('parseServerFrame()', () => {
  it('throws ProtocolError for a frame that is not a JSON array', () => {
    for (const text of ['not json', '{"t":"WELCOME"}', 'null']) {
      expect(() => parseServerFrame(text))
        .to.throw(ProtocolError)
        .with.property('code', 'PROTOCOL_ERROR');
    }
  });

  it('parses every server-to-client type', () => {
    const frame = [
      { t: 'WELCOME', sid: 'S', desc: 'reconnected - existing in store' },
      { t: 'SEND', eid: 'term', tid: 't', smid: 'a', msg: { x: 1 } },
      { t: 'REQUEST', eid: 'endp', tid: 't', smid: 'b' },
      { t: 'RESOLVE', cmid: '1', tid: 't', smid: 'c', msg: 2 },
      { t: 'REJECT', cmid: '2', tid: 't' },
      { t: 'ACK', cmid: '3' },
      { t: 'NACK', ids: ['4', '5'], desc: 'no' },
      { t: 'ACK2', smid: 'a' },
      { t: 'RETRY', cmid: '6', desc: 'later' },
      { t: 'SUB_OK', eid: 'topic' },
      { t: 'SUB_LOST', eid: 'topic' },
      { t: 'SUB_NO_AUTH', eid: 'topic' },
      { t: 'PUB', eid: 'topic', smid: 'k3J9Qa.42', tid: 't', msg: 'hi' },
      { t: 'REAUTH' },
      { t: 'PONG', x: '0' },
    ];
    const { envelopes, problems } = parseServerFrame(JSON.stringify(frame));
    expect(problems).to.deep.equal([]);
    expect(envelopes).to.deep.equal(frame);
  });

  it('converts numeric ids to strings and drops null fields', () => {
    const { envelopes } = parseServerFrame(
      JSON.stringify([
        { t: 'ACK', cmid: 0, desc: null },
        { t: 'ACK2', ids: [1, '2'] },
        { t: 'RESOLVE', cmid: 7, tid: 't', smid: null, msg: null },
      ]),
    );
    expect(envelopes).to.deep.equal([
      { t: 'ACK', cmid: '0' },
      { t: 'ACK2', ids: ['1', '2'] },
      { t: 'RESOLVE', cmid: '7', tid: 't' },
    ]);
  });

  it('skips unknown types, non-objects and envelopes missing required fields, and reports them', () => {
    const { envelopes, problems } = parseServerFrame(
      JSON.stringify([
        { t: 'FUTURE_TYPE' },
        42,
        { t: 'WELCOME' },
        { t: 'ACK' },
        { t: 'ACK2', ids: [] },
        { t: 'PUB', eid: 'topic', tid: 't' },
        { t: 'HELLO', clv: 'x', an: 'a', av: 'b' },
        { t: 'PONG', x: '1' },
      ]),
    );
    expect(envelopes).to.deep.equal([{ t: 'PONG', x: '1' }]);
    expect(problems).to.have.length(7);
  });

  it('keeps a debug object and ignores a debug that is not an object', () => {
    const { envelopes } = parseServerFrame(
      JSON.stringify([
        { t: 'PUB', eid: 'e', smid: 's', tid: 't', debug: { resd: 1, smcts: 5, mscts: 6 } },
        { t: 'PUB', eid: 'e', smid: 's2', tid: 't', debug: 'x' },
      ]),
    );
    expect(envelopes[0]).to.have.deep.property('debug', { resd: 1, smcts: 5, mscts: 6 });
    expect(envelopes[1]).to.not.have.property('debug');
  });
});
