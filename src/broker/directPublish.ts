import type { AmqpPublishOptions } from './amqpProperties.ts';
import type { ConfirmChannelLike } from './PublishChannelPool.ts';
import { encodePublishFrames, type PublishFrameFields } from './publishFrames.ts';

/**
 * The method fields and properties of a `basic.publish`, as amqplib's frame encoder reads them: the same object
 * amqplib's own `publish` builds (`Args.publish` in `lib/api_args.js`), with every field present so all such
 * objects share one shape.
 * @internal
 */
export interface PublishFields {
  exchange: string;
  routingKey: string;
  mandatory: boolean;
  immediate: false;
  ticket: undefined;
  contentType: string | undefined;
  contentEncoding: string | undefined;
  headers: Record<string, unknown>;
  deliveryMode: 1 | 2;
  priority: undefined;
  correlationId: undefined;
  replyTo: undefined;
  expiration: string | undefined;
  messageId: string;
  timestamp: number | undefined;
  type: string | undefined;
  userId: undefined;
  appId: string | undefined;
  clusterId: undefined;
}

/** The non-public part of amqplib's `ConfirmChannel` that {@link directPublisher} uses. */
interface ChannelInternals {
  sendMessage(fields: PublishFields, properties: PublishFields, content: Buffer): boolean;
  pushConfirmCallback(callback: (err: unknown) => void): void;
}

/** Our publish options as the fields amqplib's encoder reads. */
export function publishFields(exchange: string, routingKey: string, o: AmqpPublishOptions): PublishFields {
  return {
    exchange,
    routingKey,
    mandatory: o.mandatory,
    immediate: false,
    ticket: undefined,
    contentType: o.contentType,
    contentEncoding: o.contentEncoding,
    headers: o.headers,
    deliveryMode: o.persistent ? 2 : 1,
    priority: undefined,
    correlationId: undefined,
    replyTo: undefined,
    expiration: o.expiration,
    messageId: o.messageId,
    timestamp: o.timestamp,
    type: o.type,
    userId: undefined,
    appId: o.appId,
    clusterId: undefined,
  };
}

/**
 * A `publish` for an amqplib confirm channel that puts the same frames on the wire as `channel.publish`, but hands
 * amqplib the headers as the plain object they are.
 *
 * Why: amqplib's `publish` wraps the headers as `Object.create(options.headers)`, so every message's headers
 * object becomes a prototype (V8 rebuilds its map) and the table encoder's `for...in` walks a prototype chain. With
 * the seven `mats_*` headers that costs ~12 µs per message, the largest single item of a Mats round trip's CPU
 * profile. This does what `ConfirmChannel.publish` does (encode and send, then queue the confirm callback) without
 * that wrapper. It uses two methods that are not public API (`sendMessage`, `pushConfirmCallback`); when they are
 * missing, it returns `undefined` and the caller keeps `channel.publish`. A unit test checks that
 * {@link publishFields} equals what amqplib's `Args.publish` builds, so a change there fails CI.
 */
export function directPublisher(channel: object): ConfirmChannelLike['publish'] | undefined {
  const internals = channel as Partial<ChannelInternals>;
  if (typeof internals.sendMessage !== 'function' || typeof internals.pushConfirmCallback !== 'function') {
    return undefined;
  }
  const ch = internals as ChannelInternals;
  return (exchange, routingKey, content, options, callback) => {
    const fields = publishFields(exchange, routingKey, options);
    const ok = ch.sendMessage(fields, fields, content);
    ch.pushConfirmCallback(callback);
    return ok;
  };
}

/** The non-public part of amqplib's `Connection` that {@link encodePublishesDirectly} uses. */
interface ConnectionInternals {
  sendMessage(
    channel: number,
    method: number,
    fields: PublishFrameFields,
    propertiesClass: number,
    properties: PublishFrameFields,
    content: Buffer,
  ): boolean;
  channels: Array<{ buffer: { write(chunk: Buffer): boolean } } | undefined>;
  frameMax: number;
  sentSinceLastCheck: boolean;
}

/** amqplib's ids (`defs.js`) of basic.publish (class 60, method 40) and of the basic class's properties. */
const BASIC_PUBLISH_ID = 0x003c0028;
const BASIC_PROPERTIES_ID = 60;

/**
 * Makes the connection under an amqplib `ChannelModel` encode its publishes with {@link encodePublishFrames}
 * (the same bytes, a quarter of the CPU) and hand them to the channel's output as amqplib's own `sendMessage`
 * does; anything that encoder does not cover (multi-frame bodies, other header value types) still goes through
 * amqplib. Replaces `model.connection.sendMessage` on this one connection, which is not public API: returns false
 * and changes nothing when it is not there.
 */
export function encodePublishesDirectly(model: unknown): boolean {
  const connection = (model as { connection?: Partial<ConnectionInternals> } | undefined)?.connection;
  if (
    !connection ||
    typeof connection.sendMessage !== 'function' ||
    !Array.isArray(connection.channels) ||
    typeof connection.frameMax !== 'number'
  ) {
    return false;
  }
  const c = connection as ConnectionInternals;
  const original = c.sendMessage.bind(c);
  c.sendMessage = (channel, method, fields, propertiesClass, properties, content) => {
    if (method === BASIC_PUBLISH_ID && propertiesClass === BASIC_PROPERTIES_ID && Buffer.isBuffer(content)) {
      const mux = c.channels[channel];
      const frames = mux && encodePublishFrames(channel, fields, properties, content, c.frameMax);
      if (frames) {
        c.sentSinceLastCheck = true;
        return mux.buffer.write(frames);
      }
    }
    return original(channel, method, fields, propertiesClass, properties, content);
  };
  return true;
}
