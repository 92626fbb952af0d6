import { expect } from 'chai';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { encodePublishesDirectly } from '../../../src/broker/directPublish.ts';
import { encodePublishFrames, type PublishFrameFields } from '../../../src/broker/publishFrames.ts';

// amqplib's package exports hide lib/, so its encoders are loaded by path: the reference for every byte.
const require = createRequire(import.meta.url);
const amqplibDir = dirname(require.resolve('amqplib'));
const defs = require(join(amqplibDir, 'lib/defs.js')) as {
  BasicPublish: number;
  BasicProperties: number;
  BasicAck: number;
  encodeMethod(id: number, channel: number, fields: object): Buffer;
  encodeProperties(id: number, channel: number, size: number, fields: object): Buffer;
};
const frame = require(join(amqplibDir, 'lib/frame.js')) as {
  makeBodyFrame(channel: number, payload: Buffer): Buffer;
};
const Args = require(join(amqplibDir, 'lib/api_args.js')) as {
  publish(exchange: string, routingKey: string, options: object): PublishFrameFields;
};

/** What amqplib's `Connection.sendMessage` writes for a publish whose body fits one frame. */
function amqplibFrames(channel: number, fields: PublishFrameFields, body: Buffer): Buffer {
  return Buffer.concat([
    defs.encodeMethod(defs.BasicPublish, channel, fields),
    defs.encodeProperties(defs.BasicProperties, channel, body.length, fields),
    body.length > 0 ? frame.makeBodyFrame(channel, body) : Buffer.alloc(0),
  ]);
}

const FRAME_MAX = 4096;

const matsHeaders = {
  mats_TraceId: 'bench.m1',
  mats_MsgId: 'm_abcdefghij_Tlq2x7abc_1',
  mats_CallType: 'REQUEST',
  mats_From: 'bench',
  mats_To: 'Bench.echo',
  mats_InitApp: 'MatsBench',
  mats_InitId: 'bench',
};

const cases: Array<[string, PublishFrameFields, Buffer]> = [
  [
    'a Mats message',
    {
      exchange: '',
      routingKey: 'mats.Bench.echo',
      mandatory: true,
      immediate: false,
      contentType: 'application/json',
      headers: matsHeaders,
      deliveryMode: 2,
      messageId: 'm_abcdefghij_Tlq2x7abc_1',
      timestamp: 1_765_000_000,
      type: 'REQUEST',
      appId: 'MatsBench',
    },
    Buffer.from('{"v":1}'.padEnd(600, ' ')),
  ],
  [
    'every property, non-ASCII and long strings',
    {
      exchange: 'mats.pubsub',
      routingKey: 'mats.Topic.ü',
      mandatory: false,
      immediate: true,
      ticket: 0,
      contentType: 'application/json; charset=ütf-8',
      contentEncoding: 'deflate',
      headers: {
        ascii: 'x'.repeat(200),
        long_unicode: 'ü€😀'.repeat(40),
        short_unicode: 'trace-ü',
        ['k'.repeat(100)]: 'long key',
        empty: '',
      },
      deliveryMode: 1,
      priority: 9,
      correlationId: 'c'.repeat(255),
      replyTo: 'amq.rabbitmq.reply-to',
      expiration: '60000',
      messageId: 'id-€',
      timestamp: 2 ** 40 + 7,
      type: 'PUBLISH',
      userId: 'guest',
      appId: 'App;1.0',
      clusterId: 'c1',
    },
    Buffer.from('ü'.repeat(100)),
  ],
  [
    'numbers of every width amqplib picks, booleans',
    {
      routingKey: 'q',
      headers: {
        zero: 0,
        negZero: -0,
        minusOne: -1,
        b127: 127,
        s128: 128,
        bMinus128: -128,
        sMinus129: -129,
        s32767: 32767,
        i32768: 32768,
        iMinus32769: -32769,
        i2p31m1: 2 ** 31 - 1,
        l2p31: 2 ** 31,
        lMinus2p31m1: -(2 ** 31) - 1,
        l2p40: 2 ** 40,
        maxSafe: Number.MAX_SAFE_INTEGER,
        minSafe: Number.MIN_SAFE_INTEGER,
        d1p5: 1.5,
        dMinusQuarter: -0.25,
        d2p63: 2 ** 63,
        expires: 1_765_000_000_123,
        yes: true,
        no: false,
        skipped: undefined,
      },
    },
    Buffer.from('x'),
  ],
  ['no properties, empty body', { routingKey: 'q' }, Buffer.alloc(0)],
  [
    'empty headers, a body of exactly one frame',
    { routingKey: 'q', headers: {} },
    Buffer.alloc(FRAME_MAX - 8, 7),
  ],
  [
    "amqplib's own publish fields (headers behind a prototype)",
    Args.publish('', 'q', {
      persistent: true,
      mandatory: true,
      messageId: 'm1',
      headers: matsHeaders,
      expiration: 500,
    }),
    Buffer.from('hello'),
  ],
];

describe('publishFrames', () => {
  for (const [name, fields, body] of cases) {
    it(`encodes the same bytes as amqplib (${name})`, () => {
      const ours = encodePublishFrames(5, fields, fields, body, FRAME_MAX);
      expect(ours, 'encoded').to.not.equal(undefined);
      expect(ours!.equals(amqplibFrames(5, fields, body))).to.equal(true);
    });
  }

  const declined: Array<[string, PublishFrameFields, Buffer?]> = [
    ['a body that needs two frames', { routingKey: 'q' }, Buffer.alloc(FRAME_MAX - 7)],
    ['an object header', { routingKey: 'q', headers: { o: { a: 1 } } }],
    ['a null header', { routingKey: 'q', headers: { n: null } }],
    ['an array header', { routingKey: 'q', headers: { CC: ['a'] } }],
    ['a NaN header', { routingKey: 'q', headers: { n: Number.NaN } }],
    ['a non-integer amqplib would encode as long', { routingKey: 'q', headers: { n: 2 ** 50 + 0.5 } }],
    ['a header key over 255 bytes', { routingKey: 'q', headers: { ['k'.repeat(256)]: 'v' } }],
    ['a short string over 255 bytes', { routingKey: 'q', messageId: 'm'.repeat(256) }],
    ['a routing key over 255 bytes', { routingKey: 'ü'.repeat(128) }],
    ['a deliveryMode that is not an octet', { routingKey: 'q', deliveryMode: 300 }],
    ['a fractional timestamp', { routingKey: 'q', timestamp: 1.5 }],
  ];
  for (const [name, fields, body] of declined) {
    it(`leaves ${name} to amqplib`, () => {
      expect(encodePublishFrames(1, fields, fields, body ?? Buffer.from('x'), FRAME_MAX)).to.equal(undefined);
    });
  }
});

describe('encodePublishesDirectly', () => {
  /** A stand-in for amqplib's Connection: channel 1 open, its output recorded; amqplib's own path recorded. */
  function fakeConnection() {
    const written: Buffer[] = [];
    const fallback: number[] = [];
    const connection = {
      frameMax: FRAME_MAX,
      sentSinceLastCheck: false,
      channels: [undefined, { buffer: { write: (b: Buffer) => (written.push(b), true) } }],
      sendMessage(...args: [number, number, object, number, object, Buffer]): boolean {
        fallback.push(args[1]);
        return true;
      },
    };
    return { model: { connection }, connection, written, fallback };
  }

  it("writes a publish's frames to its channel's output and marks the connection as having sent", () => {
    const { model, connection, written, fallback } = fakeConnection();
    expect(encodePublishesDirectly(model)).to.equal(true);
    const [, fields, body] = cases[0]!;
    connection.sendMessage(1, defs.BasicPublish, fields, defs.BasicProperties, fields, body);
    expect(fallback).to.deep.equal([]);
    expect(written).to.have.length(1);
    expect(written[0]!.equals(amqplibFrames(1, fields, body))).to.equal(true);
    expect(connection.sentSinceLastCheck).to.equal(true);
  });

  it('leaves other methods, unknown channels and what the encoder declines to amqplib', () => {
    const { model, connection, written, fallback } = fakeConnection();
    encodePublishesDirectly(model);
    const fields = { routingKey: 'q' };
    connection.sendMessage(1, defs.BasicAck, fields, defs.BasicProperties, fields, Buffer.from('x'));
    connection.sendMessage(2, defs.BasicPublish, fields, defs.BasicProperties, fields, Buffer.from('x'));
    connection.sendMessage(
      1,
      defs.BasicPublish,
      fields,
      defs.BasicProperties,
      fields,
      Buffer.alloc(FRAME_MAX),
    );
    expect(fallback).to.deep.equal([defs.BasicAck, defs.BasicPublish, defs.BasicPublish]);
    expect(written).to.deep.equal([]);
  });

  it("changes nothing when amqplib's internals are not there", () => {
    expect(encodePublishesDirectly({})).to.equal(false);
    expect(encodePublishesDirectly({ connection: { sendMessage: () => true } })).to.equal(false);
  });
});
