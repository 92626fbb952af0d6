import { expect } from 'chai';
import { ProtocolError } from '../../../src/errors.ts';
import { parseClientFrame } from '../../../src/protocol/parseClientFrame.ts';

/** Parses a frame that must be rejected and returns the error, asserting class, code and close code. */
function rejects(frame: unknown): ProtocolError {
  const text = typeof frame === 'string' ? frame : JSON.stringify(frame);
  try {
    parseClientFrame(text);
  } catch (error) {
    expect(error).to.be.instanceOf(ProtocolError);
    expect(error).to.have.property('code', 'PROTOCOL_ERROR');
    expect(error).to.have.property('closeCode', 4004);
    return error as ProtocolError;
  }
  expect.fail(`expected ${text} to be rejected`);
}

function parse(frame: unknown): ReturnType<typeof parseClientFrame> {
  return parseClientFrame(JSON.stringify(frame));
}

const valid: Record<string, Record<string, unknown>> = {
  HELLO: { t: 'HELLO', clv: 'MatsSocket.ts,0.1', an: 'App', av: '1.0' },
  SEND: { t: 'SEND', eid: 'Test.single', tid: 't1', cmid: 0 },
  REQUEST: { t: 'REQUEST', eid: 'Test.single', tid: 't2', cmid: '1' },
  RESOLVE: { t: 'RESOLVE', smid: 'S1', cmid: 2, tid: 't3' },
  REJECT: { t: 'REJECT', smid: 'S2', cmid: 3, tid: 't4' },
  ACK: { t: 'ACK', smid: 'S1' },
  NACK: { t: 'NACK', ids: ['S1', 'S2'] },
  ACK2: { t: 'ACK2', cmid: 4 },
  SUB: { t: 'SUB', eid: 'topic' },
  UNSUB: { t: 'UNSUB', eid: 'topic' },
  AUTH: { t: 'AUTH', auth: 'Bearer x' },
  PING: { t: 'PING', x: '0' },
  PONG: { t: 'PONG', x: '0' },
};

const requiredFields: Record<string, string[]> = {
  HELLO: ['clv', 'an', 'av'],
  SEND: ['eid', 'tid', 'cmid'],
  REQUEST: ['eid', 'tid', 'cmid'],
  RESOLVE: ['smid', 'cmid', 'tid'],
  REJECT: ['smid', 'cmid', 'tid'],
  ACK: ['smid'],
  NACK: ['ids'],
  ACK2: ['cmid'],
  SUB: ['eid'],
  UNSUB: ['eid'],
  AUTH: ['auth'],
  PING: ['x'],
};

describe('parseClientFrame()', () => {
  describe('frame structure (section 2.2)', () => {
    it('accepts an empty array and yields no envelopes', () => {
      expect(parseClientFrame('[]')).to.deep.equal([]);
    });

    it('keeps the envelopes in array order', () => {
      const result = parse([valid.HELLO, valid.SEND, valid.PING]);
      expect(result.map((e) => e.t)).to.deep.equal(['HELLO', 'SEND', 'PING']);
    });

    it('rejects text that is not JSON, with the parse error as cause', () => {
      const error = rejects('[{"t":"PING",');
      expect(error.cause).to.be.instanceOf(SyntaxError);
    });

    for (const notArray of ['{"t":"PING","x":"0"}', '"PING"', '42', 'null', 'true']) {
      it(`rejects a frame that is not an array: ${notArray}`, () => {
        rejects(notArray);
      });
    }

    for (const element of [42, 'PING', null, [{ t: 'PING', x: '0' }], true]) {
      it(`rejects an element that is not an object: ${JSON.stringify(element)}`, () => {
        rejects([valid.PING, element]);
      });
    }
  });

  describe('message type', () => {
    it('rejects an envelope without t, or with a non-string t', () => {
      rejects([{ x: '0' }]);
      rejects([{ t: 7 }]);
      rejects([{ t: null }]);
    });

    it('rejects an unknown t', () => {
      rejects([{ t: 'HELLOO', clv: 'x', an: 'a', av: 'b' }]);
      rejects([{ t: 'hello', clv: 'x', an: 'a', av: 'b' }]);
    });

    for (const serverOnly of ['WELCOME', 'RETRY', 'SUB_OK', 'SUB_LOST', 'SUB_NO_AUTH', 'PUB', 'REAUTH']) {
      it(`rejects the server-only type ${serverOnly}`, () => {
        rejects([{ t: serverOnly, sid: 's', cmid: '1', eid: 'e', smid: 's', tid: 't' }]);
      });
    }

    it('accepts every client-to-server type', () => {
      const result = parse(Object.values(valid));
      expect(result.map((e) => e.t)).to.deep.equal(Object.keys(valid));
    });
  });

  describe('required fields (section 4)', () => {
    for (const [type, fields] of Object.entries(requiredFields)) {
      for (const field of fields) {
        it(`${type} without '${field}' is rejected, also when it is null`, () => {
          const { [field]: _removed, ...rest } = valid[type]!;
          rejects([rest]);
          rejects([{ ...rest, [field]: null }]);
        });
      }
    }

    it('ACK/NACK need exactly one of smid and ids', () => {
      rejects([{ t: 'ACK' }]);
      rejects([{ t: 'NACK', smid: 'S1', ids: ['S2'] }]);
      expect(parse([{ t: 'ACK', ids: ['S1'] }])).to.deep.equal([{ t: 'ACK', ids: ['S1'] }]);
    });

    it('ACK2 needs cmid or ids, and accepts both', () => {
      rejects([{ t: 'ACK2' }]);
      expect(parse([{ t: 'ACK2', cmid: 1, ids: [2, '3'] }])).to.deep.equal([
        { t: 'ACK2', cmid: '1', ids: ['2', '3'] },
      ]);
    });

    it('rejects an empty ids list (empty ack list)', () => {
      rejects([{ t: 'ACK', ids: [] }]);
      rejects([{ t: 'ACK2', ids: [] }]);
    });

    it('rejects a blank topic in SUB and UNSUB', () => {
      rejects([{ t: 'SUB', eid: '' }]);
      rejects([{ t: 'UNSUB', eid: '   ' }]);
    });

    it('accepts PONG without x', () => {
      expect(parse([{ t: 'PONG' }])).to.deep.equal([{ t: 'PONG' }]);
    });
  });

  describe('JSON types of fields', () => {
    const wrongTypes: [string, Record<string, unknown>][] = [
      ['a non-string auth', { ...valid.SEND, auth: 42 }],
      ['a non-string auth on a control envelope', { ...valid.PING, auth: { token: 'x' } }],
      ['a non-string clv', { ...valid.HELLO, clv: 1 }],
      ['a non-string an', { ...valid.HELLO, an: ['App'] }],
      ['a non-string sid', { ...valid.HELLO, sid: 12 }],
      ['a non-string HELLO tid', { ...valid.HELLO, tid: false }],
      ['a non-string eid', { ...valid.SEND, eid: 1 }],
      ['a non-string tid', { ...valid.SEND, tid: 1 }],
      ['a non-string smid', { ...valid.RESOLVE, smid: 5 }],
      ['a non-string desc', { t: 'NACK', smid: 'S1', desc: 5 }],
      ['a string rd', { ...valid.SEND, rd: '1' }],
      ['a negative rd', { ...valid.SEND, rd: -1 }],
      ['a fractional rd', { ...valid.SEND, rd: 1.5 }],
      ['a string to', { ...valid.REQUEST, to: '45000' }],
      ['a negative to', { ...valid.REQUEST, to: -1 }],
      ['a cmid object', { ...valid.SEND, cmid: { id: 1 } }],
      ['a boolean cmid', { ...valid.SEND, cmid: true }],
      ['a negative cmid', { ...valid.SEND, cmid: -1 }],
      ['a fractional cmid', { ...valid.SEND, cmid: 1.5 }],
      ['an unsafe cmid', { ...valid.SEND, cmid: 2 ** 53 }],
      ['a non-array ids', { t: 'ACK', ids: 'S1' }],
      ['a number among ACK ids (smids are strings)', { t: 'ACK', ids: ['S1', 2] }],
      ['an object among ACK2 ids', { t: 'ACK2', ids: ['1', {}] }],
      ['a negative number among ACK2 ids', { t: 'ACK2', ids: [-3] }],
      ['a boolean x', { t: 'PING', x: true }],
      ['a fractional x', { t: 'PING', x: 0.5 }],
      ['a non-string SUB smid', { t: 'SUB', eid: 'topic', smid: 3 }],
    ];
    for (const [name, envelope] of wrongTypes) {
      it(`rejects ${name}`, () => {
        rejects([envelope]);
      });
    }
  });

  describe('identifier canonicalization (section 2.4)', () => {
    it('turns numeric cmids into decimal strings and keeps string cmids', () => {
      const [send, request] = parse([
        { ...valid.SEND, cmid: 0 },
        { ...valid.REQUEST, cmid: 'abc' },
      ]);
      expect(send).to.include({ cmid: '0' });
      expect(request).to.include({ cmid: 'abc' });
      expect(parse([{ ...valid.SEND, cmid: 17 }])[0]).to.include({ cmid: '17' });
      expect(parse([{ ...valid.SEND, cmid: Number.MAX_SAFE_INTEGER }])[0]).to.include({
        cmid: '9007199254740991',
      });
    });

    it('converts numeric ids in ACK2 and numeric ping ids', () => {
      expect(parse([{ t: 'ACK2', ids: [0, 1, '2'] }])).to.deep.equal([{ t: 'ACK2', ids: ['0', '1', '2'] }]);
      expect(parse([{ t: 'PING', x: 3 }])).to.deep.equal([{ t: 'PING', x: '3' }]);
    });
  });

  describe('lengths (section 12)', () => {
    it('accepts an and av of 255 characters and rejects 256', () => {
      const ok = 'a'.repeat(255);
      expect(parse([{ ...valid.HELLO, an: ok, av: ok }])[0]).to.include({ an: ok, av: ok });
      rejects([{ ...valid.HELLO, an: ok + 'a' }]);
      rejects([{ ...valid.HELLO, av: ok + 'a' }]);
    });

    it('counts characters, not UTF-16 units', () => {
      const emoji = '\u{1F600}'.repeat(255); // 510 UTF-16 units, 255 characters
      expect(parse([{ ...valid.HELLO, an: emoji }])[0]).to.include({ an: emoji });
    });

    it('accepts a cmid of 255 characters and rejects 256, also inside ACK2 ids', () => {
      const ok = 'c'.repeat(255);
      expect(parse([{ ...valid.SEND, cmid: ok }])[0]).to.include({ cmid: ok });
      rejects([{ ...valid.SEND, cmid: ok + 'c' }]);
      rejects([{ t: 'ACK2', ids: ['1', ok + 'c'] }]);
    });

    it('does not limit the length of clv (the server truncates it for storage)', () => {
      const clv = 'x'.repeat(5000);
      expect(parse([{ ...valid.HELLO, clv }])[0]).to.include({ clv });
    });
  });

  describe('absent values and unknown fields (section 2.3)', () => {
    it('treats null optional fields as absent', () => {
      const [hello, send] = parse([
        { ...valid.HELLO, sid: null, tid: null, auth: null },
        { ...valid.SEND, msg: null, rd: null },
      ]);
      expect(hello).to.deep.equal({ t: 'HELLO', clv: 'MatsSocket.ts,0.1', an: 'App', av: '1.0' });
      expect(send).to.deep.equal({ t: 'SEND', eid: 'Test.single', tid: 't1', cmid: '0' });
      expect(send).to.not.have.property('msg');
    });

    it("ignores unknown fields, such as the JavaScript client's ts and cid", () => {
      const [hello] = parse([{ ...valid.HELLO, ts: 1767222000000, cid: 'a1B2c3D4e5', future: { x: 1 } }]);
      expect(hello).to.deep.equal({ t: 'HELLO', clv: 'MatsSocket.ts,0.1', an: 'App', av: '1.0' });
    });

    it('keeps msg as any JSON value', () => {
      for (const msg of [{ a: [1, null] }, [1, 2], 'text', 3.14, 0, false, true, '']) {
        expect(parse([{ ...valid.SEND, msg }])[0]).to.have.deep.property('msg', msg);
      }
    });

    it('keeps the optional fields of each type', () => {
      const [hello, request, reply, nack, sub] = parse([
        { ...valid.HELLO, sid: 'Qk3v9ZpL2mXa7TbR', tid: 'hello-tid', auth: 'A' },
        { ...valid.REQUEST, rd: 3, to: 45000.7, msg: { q: 1 }, auth: 'B' },
        { ...valid.RESOLVE, msg: 'ok' },
        { t: 'NACK', smid: 'S9', desc: 'The Client Terminator [x] does not exist!' },
        { t: 'SUB', eid: 'topic', smid: 'k3J9Qa.42' },
      ]);
      expect(hello).to.deep.include({ sid: 'Qk3v9ZpL2mXa7TbR', tid: 'hello-tid', auth: 'A' });
      expect(request).to.deep.equal({
        t: 'REQUEST',
        eid: 'Test.single',
        tid: 't2',
        cmid: '1',
        rd: 3,
        to: 45000,
        msg: { q: 1 },
        auth: 'B',
      });
      expect(reply).to.deep.equal({ t: 'RESOLVE', smid: 'S1', cmid: '2', tid: 't3', msg: 'ok' });
      expect(nack).to.deep.equal({
        t: 'NACK',
        smid: 'S9',
        desc: 'The Client Terminator [x] does not exist!',
      });
      expect(sub).to.deep.equal({ t: 'SUB', eid: 'topic', smid: 'k3J9Qa.42' });
    });
  });

  it('names the envelope and the field in the message', () => {
    const error = rejects([valid.PING, { ...valid.SEND, cmid: -1 }]);
    expect(error.message).to.contain('#1').and.to.contain('cmid');
  });
});
