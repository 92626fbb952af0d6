import type { HeaderValue, MessageProperties } from './Transport.ts';

/** The subset of amqplib's `Options.Publish` we send (kept structural so this file needs no amqplib import). */
export interface AmqpPublishOptions {
  messageId: string;
  persistent: boolean;
  mandatory: boolean;
  contentType?: string;
  contentEncoding?: string;
  expiration?: string;
  timestamp?: number;
  appId?: string;
  type?: string;
  headers: Record<string, HeaderValue>;
}

/** The fields of amqplib's `MessageProperties` we read. */
export interface AmqpIncomingProperties {
  messageId?: unknown;
  deliveryMode?: unknown;
  contentType?: unknown;
  contentEncoding?: unknown;
  expiration?: unknown;
  timestamp?: unknown;
  appId?: unknown;
  type?: unknown;
  headers?: Record<string, unknown> | undefined;
}

/** Our properties as AMQP publish options. The timestamp goes on the wire in seconds (the AMQP convention). */
export function toPublishOptions(p: MessageProperties, mandatory: boolean): AmqpPublishOptions {
  const o: AmqpPublishOptions = {
    messageId: p.messageId,
    persistent: p.persistent,
    mandatory,
    headers: p.headers,
  };
  if (p.contentType !== undefined) o.contentType = p.contentType;
  if (p.contentEncoding !== undefined) o.contentEncoding = p.contentEncoding;
  if (p.expiration !== undefined) o.expiration = String(Math.max(0, Math.round(p.expiration)));
  if (p.timestamp !== undefined) o.timestamp = Math.floor(p.timestamp / 1000);
  if (p.appId !== undefined) o.appId = p.appId;
  if (p.type !== undefined) o.type = p.type;
  return o;
}

/**
 * A received message's properties, and its `deliveryCount` from the quorum queue's `x-delivery-count` header
 * (missing = 0, which is also what a classic queue gives). That header is removed from `headers`; any other
 * non-primitive header value (e.g. the broker's `x-death` array) is turned into a JSON string.
 */
export function fromAmqpProperties(p: AmqpIncomingProperties): {
  properties: MessageProperties;
  deliveryCount: number;
} {
  const headers: Record<string, HeaderValue> = {};
  let deliveryCount = 0;
  const incoming = p.headers ?? {};
  // for...in, not Object.entries: no array per header on the per-delivery path (the table is a plain object).
  for (const key in incoming) {
    const value = incoming[key];
    if (key === 'x-delivery-count') {
      deliveryCount = Number(value) || 0;
      continue;
    }
    const primitive = toHeaderValue(value);
    if (primitive !== undefined) headers[key] = primitive;
  }
  const properties: MessageProperties = {
    messageId: typeof p.messageId === 'string' ? p.messageId : '',
    persistent: p.deliveryMode === 2,
    headers,
  };
  if (typeof p.contentType === 'string') properties.contentType = p.contentType;
  if (typeof p.contentEncoding === 'string') properties.contentEncoding = p.contentEncoding;
  if (p.expiration !== undefined && p.expiration !== null && !Number.isNaN(Number(p.expiration))) {
    properties.expiration = Number(p.expiration);
  }
  if (typeof p.timestamp === 'number') properties.timestamp = p.timestamp * 1000;
  if (typeof p.appId === 'string') properties.appId = p.appId;
  if (typeof p.type === 'string') properties.type = p.type;
  return { properties, deliveryCount };
}

function toHeaderValue(value: unknown): HeaderValue | undefined {
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  if (typeof value === 'bigint') return Number(value);
  if (typeof value !== 'object' || value === null) return undefined;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v));
}
