import { expect } from 'chai';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { AmqpPublishOptions } from '../../../src/broker/amqpProperties.ts';
import { directPublisher, publishFields } from '../../../src/broker/directPublish.ts';

// amqplib's package exports hide lib/, so its internals are loaded by path: what `channel.publish` builds and encodes.
const require = createRequire(import.meta.url);
const amqplibDir = dirname(require.resolve('amqplib'));
interface Fields {
  headers: Record<string, unknown>;
  [field: string]: unknown;
}
const Args = require(join(amqplibDir, 'lib/api_args.js')) as {
  publish(exchange: string, routingKey: string, options: AmqpPublishOptions): Fields;
};
const defs = require(join(amqplibDir, 'lib/defs.js')) as {
  BasicPublish: number;
  BasicProperties: number;
  encodeMethod(id: number, channel: number, fields: object): Buffer;
  encodeProperties(id: number, channel: number, size: number, fields: object): Buffer;
};

/** Own and inherited enumerable keys, as amqplib's table encoder walks them. */
function flatten(table: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key in table) out[key] = table[key];
  return out;
}

const cases: Array<[string, AmqpPublishOptions]> = [
  ['bare', { messageId: 'm1', persistent: true, mandatory: true, headers: {} }],
  [
    'every property we send',
    {
      messageId: 'm_abc_Tx_2',
      persistent: false,
      mandatory: false,
      contentType: 'application/json',
      contentEncoding: 'deflate',
      expiration: '5000',
      timestamp: 1_765_000_000,
      appId: 'App;1.2',
      type: 'REQUEST',
      headers: { mats_TraceId: 'trace-ü', mats_IA: true, mats_Expires: 1_765_000_000_123, ratio: 0.25 },
    },
  ],
];

describe('directPublish', () => {
  for (const [name, options] of cases) {
    it(`builds the same publish fields as amqplib's channel.publish (${name})`, () => {
      const theirs = Args.publish('ex', 'rk', options);
      const ours = publishFields('ex', 'rk', options);
      expect(Object.keys(ours).sort()).to.deep.equal(Object.keys(theirs).sort());
      expect({ ...ours, headers: flatten(ours.headers) }).to.deep.equal({
        ...theirs,
        headers: flatten(theirs.headers),
      });
    });

    it(`encodes to the same frames as amqplib's channel.publish (${name})`, () => {
      const theirs = Args.publish('ex', 'rk', options);
      const ours = publishFields('ex', 'rk', options);
      expect(defs.encodeMethod(defs.BasicPublish, 3, ours)).to.deep.equal(
        defs.encodeMethod(defs.BasicPublish, 3, theirs),
      );
      expect(defs.encodeProperties(defs.BasicProperties, 3, 42, ours)).to.deep.equal(
        defs.encodeProperties(defs.BasicProperties, 3, 42, theirs),
      );
    });
  }

  it('sends the message, then queues the confirm callback, and returns what sendMessage returned', () => {
    const calls: string[] = [];
    const callback = (): void => undefined;
    const channel = {
      sendMessage(fields: Fields, properties: Fields, content: Buffer): boolean {
        expect(properties).to.equal(fields);
        calls.push(`send ${String(fields.routingKey)} ${content.toString()}`);
        return false;
      },
      pushConfirmCallback(cb: unknown): void {
        expect(cb).to.equal(callback);
        calls.push('confirm');
      },
    };
    const publish = directPublisher(channel)!;
    const options = cases[0]![1];
    expect(publish('', 'q', Buffer.from('hi'), options, callback)).to.equal(false);
    expect(calls).to.deep.equal(['send q hi', 'confirm']);
  });

  it("returns undefined when amqplib's internals are not there (the caller keeps channel.publish)", () => {
    expect(directPublisher({ publish: () => true })).to.equal(undefined);
    expect(directPublisher({ sendMessage: () => true })).to.equal(undefined);
  });
});
