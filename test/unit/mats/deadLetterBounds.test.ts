import { deflateSync } from 'node:zlib';
import { expect } from 'chai';
import { deadLetterMessage } from '../../../src/mats/DeadLetter.ts';
import { decodeEnvelope } from '../../../src/mats/MatsEnvelope.ts';
import {
  decodeDelivery,
  headersSize,
  MatsHeader,
  MAX_HEADERS_TOTAL_BYTES,
  MAX_INFLATED_BODY_BYTES,
} from '../../../src/mats/MatsWire.ts';
import { ProtocolError } from '../../../src/errors.ts';

const source = {
  queuePrefix: 'mats.',
  stageId: 'E.stage1',
  appName: 'App',
  appVersion: '3.1',
  nodeName: 'node-7',
  stageOrigin: 'file.ts:1:2',
  now: 123,
};

/** What a hostile or broken sender can put in a Mats message, dead-lettered. */
describe('dead letters of hostile messages are always publishable', () => {
  it('keeps the header table within the broker limit however many and large the incoming headers are', () => {
    const headers: Record<string, string> = { [MatsHeader.TRACE_ID]: 'the-trace' };
    for (let i = 0; i < 500; i++) headers[`x-junk-${i}`] = 'v'.repeat(3000);
    const m = deadLetterMessage(
      { body: Buffer.from('{}'), properties: { messageId: 'id', persistent: true, headers } },
      { error: new Error('boom '.repeat(5000)), refused: true, attempt: 1, envelopeDlqCount: 0 },
      source,
    );
    expect(headersSize(m.properties.headers)).to.be.at.most(MAX_HEADERS_TOTAL_BYTES);
    // The Mats wire's own headers and every annotation survive; the junk is what gives way.
    expect(m.properties.headers[MatsHeader.TRACE_ID]).to.equal('the-trace');
    expect(m.properties.headers[MatsHeader.DLQ_DLQ_COUNT]).to.equal(1);
    expect(String(m.properties.headers[MatsHeader.DLQ_EXCEPTION])).to.match(/^Error: boom/);
  });

  it('counts a DlqCount header that is not a count (a string, NaN, negative) as 0', () => {
    for (const bad of ['abc', 'NaN', -3, 1.5, '']) {
      const m = deadLetterMessage(
        {
          body: Buffer.alloc(0),
          properties: { messageId: 'id', persistent: true, headers: { [MatsHeader.DLQ_DLQ_COUNT]: bad } },
        },
        { error: 'x', refused: true, attempt: 1, envelopeDlqCount: undefined },
        source,
      );
      expect(m.properties.headers[MatsHeader.DLQ_DLQ_COUNT], String(bad)).to.equal(1);
    }
  });

  it('refuses an envelope whose dlqCount is not a count', () => {
    const base = {
      v: 1,
      flowId: 'f',
      id: 'i',
      traceId: 't',
      init: {},
      from: {},
      call: { type: 'SEND', from: 'x', to: { id: 'S', kind: 'queue' } },
      stack: [],
      states: [],
      callNo: 1,
      totalCallNo: 1,
    };
    expect(decodeEnvelope(JSON.stringify({ ...base, dlqCount: 2 })).dlqCount).to.equal(2);
    for (const bad of ['2', -1, 1e300, null])
      expect(() => decodeEnvelope(JSON.stringify({ ...base, dlqCount: bad })), String(bad)).to.throw(
        ProtocolError,
      );
  });

  it('refuses a compressed body that inflates past the cap, without inflating all of it', async () => {
    const bomb = deflateSync(Buffer.alloc(MAX_INFLATED_BODY_BYTES + 1024 * 1024, 0x20));
    expect(bomb.length).to.be.below(200_000);
    const rss = process.memoryUsage().rss;
    const error = await Promise.resolve()
      .then(() =>
        decodeDelivery({
          body: bomb,
          properties: { messageId: 'id', persistent: true, headers: {}, contentEncoding: 'deflate' },
        }),
      )
      .then(
        () => expect.fail('should refuse'),
        (err: unknown) => err,
      );
    expect(error).to.be.instanceOf(ProtocolError);
    expect(String((error as Error).message)).to.match(/inflate/i);
    expect(process.memoryUsage().rss - rss).to.be.below(2 * MAX_INFLATED_BODY_BYTES);
  });
});
