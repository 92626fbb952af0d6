import { expect } from 'chai';
import { deadLetterMessage, describeError } from '../../../src/mats/DeadLetter.ts';
import { headersSize, MatsHeader } from '../../../src/mats/MatsWire.ts';

const source = {
  queuePrefix: 'mats.',
  stageId: 'E.stage1',
  appName: 'App',
  appVersion: '3.1',
  nodeName: 'node-7',
  stageOrigin: 'file.ts:1:2',
  now: 123,
};

describe('deadLetterMessage', () => {
  it('keeps body and properties (minus expiration), adds the mats_dlq_* headers', () => {
    const body = Buffer.from('{"v":1}');
    const m = deadLetterMessage(
      {
        body,
        properties: {
          messageId: 'id',
          persistent: false,
          expiration: 50,
          headers: { [MatsHeader.TRACE_ID]: 't' },
        },
      },
      { error: new Error('boom'), refused: false, attempt: 6, envelopeDlqCount: 0 },
      source,
    );
    expect(m.target).to.deep.equal({ kind: 'queue', name: 'DLQ.mats.E.stage1' });
    expect(m.body).to.equal(body);
    expect(m.properties.expiration).to.equal(undefined);
    expect(m.properties.persistent).to.equal(false);
    expect(m.properties.headers).to.include({
      [MatsHeader.TRACE_ID]: 't',
      [MatsHeader.DLQ_REFUSED]: 'false',
      [MatsHeader.DLQ_DELIVERY_COUNT]: 6,
      [MatsHeader.DLQ_DLQ_COUNT]: 1,
      [MatsHeader.DLQ_APP_AND_VERSION]: 'App;3.1',
      [MatsHeader.DLQ_NODE]: 'node-7',
      [MatsHeader.DLQ_STAGE_ORIGIN]: 'file.ts:1:2',
      [MatsHeader.DLQ_TIMESTAMP]: 123,
    });
    expect(String(m.properties.headers[MatsHeader.DLQ_EXCEPTION])).to.match(/^Error: boom\n/);
  });

  it('increments a previous DlqCount (reissued messages)', () => {
    const m = deadLetterMessage(
      {
        body: Buffer.alloc(0),
        properties: { messageId: 'id', persistent: true, headers: { [MatsHeader.DLQ_DLQ_COUNT]: 2 } },
      },
      { error: 'x', refused: true, attempt: 1, envelopeDlqCount: 0 },
      source,
    );
    expect(m.properties.headers[MatsHeader.DLQ_DLQ_COUNT]).to.equal(3);
    expect(m.properties.headers[MatsHeader.DLQ_REFUSED]).to.equal('true');
  });

  it('caps each value at 4 KiB and the table at 16 KiB', () => {
    const headers: Record<string, string> = {};
    for (let i = 0; i < 3; i++) headers[`big${i}`] = 'y'.repeat(10_000);
    const m = deadLetterMessage(
      { body: Buffer.alloc(0), properties: { messageId: 'id', persistent: true, headers } },
      { error: new Error('z'.repeat(50_000)), refused: false, attempt: 2, envelopeDlqCount: undefined },
      source,
    );
    for (const v of Object.values(m.properties.headers))
      expect(Buffer.byteLength(String(v))).to.be.at.most(4096);
    expect(headersSize(m.properties.headers)).to.be.at.most(16 * 1024);
  });

  it('describeError includes the cause chain', () => {
    const err = new Error('outer', { cause: new TypeError('inner') });
    expect(describeError(err)).to.contain('Caused by: TypeError: inner');
  });
});
