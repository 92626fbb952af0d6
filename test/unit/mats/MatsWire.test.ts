import { inflateSync } from 'node:zlib';
import { expect } from 'chai';
import { ProtocolError } from '../../../src/errors.ts';
import {
  decodeDelivery,
  dlqName,
  finalizeMessage,
  headersSize,
  MatsHeader,
  stageQueueName,
  targetOf,
  topicName,
  truncateUtf8,
  type PendingMessage,
} from '../../../src/mats/MatsWire.ts';

function pending(json: string, overrides: Partial<PendingMessage> = {}): PendingMessage {
  return {
    matsMessageId: 'm_x_T1_a',
    causeMessageId: undefined,
    target: { kind: 'queue', name: 'mats.Svc' },
    json,
    callType: 'REQUEST',
    traceId: 'trace',
    from: 'init',
    to: 'Svc',
    initiatingApp: 'App',
    initiatorId: 'init',
    appName: 'App',
    interactive: false,
    nonPersistent: false,
    noAudit: false,
    ttlMs: undefined,
    ...overrides,
  };
}

const opts = { now: 1_000_000, processingMs: 0, compressionThresholdBytes: 1024 };

describe('MatsWire', () => {
  it('names queues, interactive queues, topics and DLQs', () => {
    expect(stageQueueName('mats.', 'E.stage1', false)).to.equal('mats.E.stage1');
    expect(stageQueueName('mats.', 'E.stage1', true)).to.equal('mats.E.stage1:i');
    expect(topicName('mats.', 'T')).to.equal('mats.T');
    expect(dlqName('mats.', 'E.stage1')).to.equal('DLQ.mats.E.stage1');
    expect(targetOf('mats.', { id: 'T', kind: 'topic' }, true)).to.deep.equal({
      kind: 'topic',
      name: 'mats.T',
    });
    expect(targetOf('mats.', { id: 'S', kind: 'queue' }, true)).to.deep.equal({
      kind: 'queue',
      name: 'mats.S:i',
    });
  });

  it('leaves small bodies alone and deflates bodies over the threshold', async () => {
    const small = await finalizeMessage(pending('{"a":1}'), opts);
    expect(small.properties.contentEncoding).to.equal(undefined);
    expect(small.body.toString()).to.equal('{"a":1}');
    const bigJson = JSON.stringify({ s: 'x'.repeat(2000) });
    const big = await finalizeMessage(pending(bigJson), opts);
    expect(big.properties.contentEncoding).to.equal('deflate');
    expect(inflateSync(big.body).toString()).to.equal(bigJson);
    expect(big.properties.contentType).to.equal('application/json');
  });

  it('sets the properties and headers of section 4.1; flags only when true', async () => {
    const m = await finalizeMessage(pending('1', { interactive: true, noAudit: true }), opts);
    expect(m.properties).to.include({
      messageId: 'm_x_T1_a',
      persistent: true,
      appId: 'App',
      type: 'REQUEST',
      timestamp: 1_000_000,
    });
    expect(m.properties.headers).to.deep.equal({
      [MatsHeader.TRACE_ID]: 'trace',
      [MatsHeader.MSG_ID]: 'm_x_T1_a',
      [MatsHeader.CALL_TYPE]: 'REQUEST',
      [MatsHeader.FROM]: 'init',
      [MatsHeader.TO]: 'Svc',
      [MatsHeader.INIT_APP]: 'App',
      [MatsHeader.INIT_ID]: 'init',
      [MatsHeader.INTERACTIVE]: 'true',
      [MatsHeader.NO_AUDIT]: 'true',
    });
  });

  it('non-persistent with TTL: transient, per-hop expiration reduced by processing time, and mats_Expires', async () => {
    const m = await finalizeMessage(pending('1', { nonPersistent: true, ttlMs: 5000 }), {
      ...opts,
      processingMs: 1200,
    });
    expect(m.properties.persistent).to.equal(false);
    expect(m.properties.expiration).to.equal(3800);
    expect(m.properties.headers[MatsHeader.EXPIRES]).to.equal(1_000_000 + 3800);
    expect(m.properties.headers[MatsHeader.NON_PERSISTENT]).to.equal('true');
    const late = await finalizeMessage(pending('1', { nonPersistent: true, ttlMs: 100 }), {
      ...opts,
      processingMs: 500,
    });
    expect(late.properties.expiration).to.equal(1);
  });

  it('truncates the trace id header to 1 KiB', async () => {
    const m = await finalizeMessage(pending('1', { traceId: 'é'.repeat(2000) }), opts);
    expect(Buffer.byteLength(String(m.properties.headers[MatsHeader.TRACE_ID]))).to.be.at.most(1024);
    expect(headersSize(m.properties.headers)).to.be.below(16 * 1024);
  });

  it('decodes plain and deflated deliveries, refuses unknown encodings and garbage', async () => {
    const json = JSON.stringify({
      v: 1,
      flowId: 'f',
      id: 'i',
      traceId: 't',
      init: { app: 'a', ver: '1', node: 'n', id: 'x', ts: 1 },
      from: { app: 'a', ver: '1', node: 'n', ts: 1 },
      callNo: 1,
      totalCallNo: 1,
      call: { type: 'SEND', from: 'x', to: { id: 'S', kind: 'queue' } },
      stack: [],
      states: [],
      keepTrace: 'COMPACT',
      dlqCount: 0,
      data: { big: 'y'.repeat(3000) },
    });
    const plain = await finalizeMessage(pending('{}'), opts);
    const deflated = await finalizeMessage(pending(json), opts);
    expect((await decodeDelivery(deflated)).data).to.deep.equal({ big: 'y'.repeat(3000) });
    await Promise.resolve()
      .then(() =>
        decodeDelivery({ body: plain.body, properties: { ...plain.properties, contentEncoding: 'gzip' } }),
      )
      .then(
        () => expect.fail('should refuse'),
        (err: unknown) => expect(err).to.be.instanceOf(ProtocolError),
      );
    await Promise.resolve()
      .then(() =>
        decodeDelivery({
          body: Buffer.from('garbage'),
          properties: { ...plain.properties, contentEncoding: 'deflate' },
        }),
      )
      .then(
        () => expect.fail('should refuse'),
        (err: unknown) => expect(err).to.be.instanceOf(ProtocolError),
      );
  });

  it('truncateUtf8 never splits a character', () => {
    expect(truncateUtf8('abc', 10)).to.equal('abc');
    expect(truncateUtf8('ééé', 5)).to.equal('éé');
    expect(truncateUtf8('a😀b', 3)).to.equal('a');
  });
});
