import { expect } from 'chai';
import { fromAmqpProperties, toPublishOptions } from '../../../src/broker/amqpProperties.ts';
import { resolveAmqpTransportOptions } from '../../../src/broker/AmqpTransportOptions.ts';
import { checkHeaders, headerTableSize } from '../../../src/broker/headerTable.ts';
import type { HeaderValue } from '../../../src/broker/Transport.ts';
import { resolveTransportOptions } from '../../../src/broker/TransportOptions.ts';
import { ConfigError, ErrorCode, TransportError } from '../../../src/errors.ts';

describe('headerTable', () => {
  it('bounds the AMQP field-table size from above', () => {
    expect(headerTableSize({})).to.equal(4);
    // key 'a': 1 + 1, type 1, longstr 4 + 3
    expect(headerTableSize({ a: 'abc' })).to.equal(4 + 2 + 1 + 4 + 3);
    expect(headerTableSize({ n: 1, b: true })).to.equal(4 + (2 + 1 + 8) + (2 + 1 + 1));
    expect(headerTableSize({ ü: 'é' })).to.equal(4 + 2 + 2 + 4 + 2);
  });

  it('rejects oversized tables, non-primitive values and long keys with TRANSPORT_HEADERS_TOO_LARGE', () => {
    checkHeaders({ a: 'x'.repeat(1000) }, 2000);
    const fail = (h: Record<string, unknown>, max = 65_536) =>
      expect(() => checkHeaders(h as Record<string, HeaderValue>, max))
        .to.throw(TransportError)
        .with.property('code', ErrorCode.TRANSPORT_HEADERS_TOO_LARGE);
    fail({ a: 'x'.repeat(1000) }, 1000);
    fail({ a: { nested: 1 } });
    fail({ a: Number.NaN });
    fail({ ['k'.repeat(256)]: 1 });
  });
});

describe('amqpProperties', () => {
  it('maps our properties to publish options (timestamp in seconds, expiration as a string)', () => {
    expect(
      toPublishOptions(
        {
          messageId: 'm',
          persistent: false,
          contentType: 'application/json',
          expiration: 1500,
          timestamp: 1_700_000_000_999,
          type: 'REQUEST',
          headers: { a: 1 },
        },
        true,
      ),
    ).to.deep.equal({
      messageId: 'm',
      persistent: false,
      mandatory: true,
      contentType: 'application/json',
      expiration: '1500',
      timestamp: 1_700_000_000,
      type: 'REQUEST',
      headers: { a: 1 },
    });
  });

  it('maps received properties back, taking deliveryCount from x-delivery-count and flattening x-death', () => {
    const { properties, deliveryCount } = fromAmqpProperties({
      messageId: 'm',
      deliveryMode: 2,
      contentEncoding: 'deflate',
      expiration: '1500',
      timestamp: 1_700_000_000,
      appId: 'app',
      headers: {
        'x-delivery-count': 3,
        'x-death': [{ count: 1, reason: 'delivery_limit', queue: 'q' }],
        'x-first-death-reason': 'delivery_limit',
        raw: Buffer.from('bytes'),
        big: 5n,
        gone: null,
      },
    });
    expect(deliveryCount).to.equal(3);
    expect(properties).to.deep.equal({
      messageId: 'm',
      persistent: true,
      contentEncoding: 'deflate',
      expiration: 1500,
      timestamp: 1_700_000_000_000,
      appId: 'app',
      headers: {
        'x-death': '[{"count":1,"reason":"delivery_limit","queue":"q"}]',
        'x-first-death-reason': 'delivery_limit',
        raw: 'bytes',
        big: 5,
      },
    });
    expect(fromAmqpProperties({ headers: undefined }).deliveryCount).to.equal(0);
  });
});

describe('transport options', () => {
  it('applies the documented defaults', () => {
    const o = resolveAmqpTransportOptions({ name: 'n' });
    expect(o).to.deep.include({
      name: 'n',
      exchange: 'mats.pubsub',
      confirmTimeoutMs: 30_000,
      closeTimeoutMs: 5000,
      maxHeaderBytes: 65_536,
      url: 'amqp://guest:guest@127.0.0.1:5672',
      publishChannels: 4,
      maxUnconfirmedPerChannel: 1000,
      connectTimeoutMs: 10_000,
      coalesceWrites: true,
      directPublish: true,
    });
    expect(o.reconnect).to.deep.equal({ initialMs: 500, factor: 2, maxMs: 30_000, jitter: 0.2 });
  });

  it('throws ConfigError naming the field', () => {
    const field = (f: () => unknown) => {
      try {
        f();
      } catch (error) {
        expect(error).to.be.instanceOf(ConfigError);
        return (error as ConfigError).field;
      }
      throw new Error('expected a ConfigError');
    };
    expect(field(() => resolveTransportOptions({ name: 'n', closeTimeoutMs: -1 }))).to.equal(
      'closeTimeoutMs',
    );
    expect(
      field(() => resolveTransportOptions({ name: 'n', reconnect: { initialMs: 100, maxMs: 50 } })),
    ).to.equal('reconnect.maxMs');
    expect(field(() => resolveAmqpTransportOptions({ name: 'n', url: 'http://x' }))).to.equal('url');
    expect(field(() => resolveAmqpTransportOptions({ name: 'n', url: 'amqp://h?heartbeat=0' }))).to.equal(
      'url',
    );
    expect(field(() => resolveAmqpTransportOptions({ name: 'n', publishChannels: 1.5 }))).to.equal(
      'publishChannels',
    );
    expect(
      field(() => resolveAmqpTransportOptions({ name: 'n', directPublish: 'yes' as unknown as boolean })),
    ).to.equal('directPublish');
  });
});
