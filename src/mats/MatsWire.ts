import { constants, deflate, deflateSync, inflate, inflateSync } from 'node:zlib';
import { promisify } from 'node:util';
import type {
  Delivery,
  HeaderValue,
  MessageProperties,
  OutgoingMessage,
  PublishTarget,
} from '../broker/Transport.ts';
import { ProtocolError } from '../errors.ts';
import { decodeEnvelope, type CallType, type Channel, type MatsEnvelope } from './MatsEnvelope.ts';

const deflateAsync = promisify(deflate);
const inflateAsync = promisify(inflate);

/** Bodies at least this large are (de)compressed off the event loop's hot path (zlib thread pool). */
const ASYNC_ZLIB_BYTES = 256 * 1024;

/** Fastest deflate level: JSON still shrinks well, and compression is on the hot path of every large message. */
const ZLIB_OPTIONS = { level: constants.Z_BEST_SPEED };

/** AMQP header names used by the Mats layer (`docs/mats-semantics.md` 3 and 4.1). */
export const MatsHeader = {
  TRACE_ID: 'mats_TraceId',
  MSG_ID: 'mats_MsgId',
  CALL_TYPE: 'mats_CallType',
  FROM: 'mats_From',
  TO: 'mats_To',
  INIT_APP: 'mats_InitApp',
  INIT_ID: 'mats_InitId',
  INTERACTIVE: 'mats_IA',
  NON_PERSISTENT: 'mats_NP',
  NO_AUDIT: 'mats_NA',
  EXPIRES: 'mats_Expires',
  DLQ_EXCEPTION: 'mats_dlq_Exception',
  DLQ_REFUSED: 'mats_dlq_Refused',
  DLQ_DELIVERY_COUNT: 'mats_dlq_DeliveryCount',
  DLQ_DLQ_COUNT: 'mats_dlq_DlqCount',
  DLQ_APP_AND_VERSION: 'mats_dlq_AppAndVersion',
  DLQ_NODE: 'mats_dlq_Node',
  DLQ_STAGE_ORIGIN: 'mats_dlq_StageOrigin',
  DLQ_TIMESTAMP: 'mats_dlq_Timestamp',
} as const;

/** Cap of one header value, in UTF-8 bytes. */
export const MAX_HEADER_VALUE_BYTES = 4096;
/** Cap of the trace id header, in UTF-8 bytes (the full trace id is in the body). */
export const MAX_TRACE_ID_HEADER_BYTES = 1024;
/** Cap of the whole header table, in UTF-8 bytes of keys and values. */
export const MAX_HEADERS_TOTAL_BYTES = 16 * 1024;
/**
 * Cap of an inflated Mats message body, in bytes: a compressed body may not expand past it (a deflate bomb of a
 * few KB would otherwise become gigabytes on every delivery attempt); beyond it the message is refused.
 */
export const MAX_INFLATED_BODY_BYTES = 64 * 1024 * 1024;

/** Queue of a stage: `<prefix><stageId>`, or `<prefix><stageId>:i` for interactive traffic. */
export function stageQueueName(prefix: string, stageId: string, interactive: boolean): string {
  return interactive ? `${prefix}${stageId}:i` : `${prefix}${stageId}`;
}

/** Topic (routing key on the pub/sub exchange) of a subscription terminator: `<prefix><endpointId>`. */
export function topicName(prefix: string, endpointId: string): string {
  return `${prefix}${endpointId}`;
}

/** Dead-letter queue of a stage, shared by its standard and interactive queues: `DLQ.<prefix><stageId>`. */
export function dlqName(prefix: string, stageId: string): string {
  return `DLQ.${prefix}${stageId}`;
}

/** The broker target of a channel, for a flow with the given interactive flag. */
export function targetOf(prefix: string, channel: Channel, interactive: boolean): PublishTarget {
  return channel.kind === 'topic'
    ? { kind: 'topic', name: topicName(prefix, channel.id) }
    : { kind: 'queue', name: stageQueueName(prefix, channel.id, interactive) };
}

/**
 * An outgoing message as collected during a stage run or initiation: serialized, with its id, but not yet
 * compressed or published. Becomes an {@link OutgoingMessage} in {@link finalizeMessage}.
 */
export interface PendingMessage {
  readonly matsMessageId: string;
  /** matsMessageId of the incoming message whose processing produced it (for the outbox), if any. */
  readonly causeMessageId: string | undefined;
  readonly target: PublishTarget;
  /** The envelope JSON. */
  readonly json: string;
  readonly callType: CallType;
  readonly traceId: string;
  readonly from: string;
  readonly to: string;
  readonly initiatingApp: string;
  readonly initiatorId: string;
  readonly appName: string;
  readonly interactive: boolean;
  readonly nonPersistent: boolean;
  readonly noAudit: boolean;
  /** Per-hop TTL in ms (nonPersistent only). */
  readonly ttlMs: number | undefined;
}

export interface FinalizeOptions {
  /** Epoch ms (send time). */
  now: number;
  /** Time spent processing since the incoming message was received, in ms; it reduces the per-hop TTL. */
  processingMs: number;
  /** Bodies larger than this (bytes) are deflated. */
  compressionThresholdBytes: number;
}

/**
 * Builds the broker message: body (deflated above the threshold), properties and the small header table. Returns
 * synchronously unless the body is large enough to be compressed on the zlib thread pool (hot-path messages never
 * allocate a promise here).
 */
export function finalizeMessage(
  pending: PendingMessage,
  options: FinalizeOptions,
): OutgoingMessage | Promise<OutgoingMessage> {
  const raw = Buffer.from(pending.json, 'utf8');
  if (raw.length <= options.compressionThresholdBytes) return buildMessage(pending, options, raw, false);
  if (raw.length < ASYNC_ZLIB_BYTES)
    return buildMessage(pending, options, deflateSync(raw, ZLIB_OPTIONS), true);
  return deflateAsync(raw, ZLIB_OPTIONS).then((body) => buildMessage(pending, options, body, true));
}

function buildMessage(
  pending: PendingMessage,
  options: FinalizeOptions,
  body: Buffer,
  compressed: boolean,
): OutgoingMessage {
  const headers: Record<string, HeaderValue> = {
    [MatsHeader.TRACE_ID]: truncateUtf8(pending.traceId, MAX_TRACE_ID_HEADER_BYTES),
    [MatsHeader.MSG_ID]: pending.matsMessageId,
    [MatsHeader.CALL_TYPE]: pending.callType,
    [MatsHeader.FROM]: truncateUtf8(pending.from, MAX_TRACE_ID_HEADER_BYTES),
    [MatsHeader.TO]: pending.to,
    [MatsHeader.INIT_APP]: truncateUtf8(pending.initiatingApp, MAX_TRACE_ID_HEADER_BYTES),
    [MatsHeader.INIT_ID]: truncateUtf8(pending.initiatorId, MAX_TRACE_ID_HEADER_BYTES),
  };
  if (pending.interactive) headers[MatsHeader.INTERACTIVE] = 'true';
  if (pending.nonPersistent) headers[MatsHeader.NON_PERSISTENT] = 'true';
  if (pending.noAudit) headers[MatsHeader.NO_AUDIT] = 'true';
  let expiration: number | undefined;
  if (pending.ttlMs !== undefined) {
    expiration = Math.max(1, Math.round(pending.ttlMs - Math.max(0, options.processingMs)));
    headers[MatsHeader.EXPIRES] = options.now + expiration;
  }
  const properties: MessageProperties = {
    messageId: pending.matsMessageId,
    persistent: !pending.nonPersistent,
    contentType: 'application/json',
    timestamp: options.now,
    appId: pending.appName,
    type: pending.callType,
    headers,
  };
  // Assigned rather than spread in: no temporary objects per message.
  if (compressed) properties.contentEncoding = 'deflate';
  if (expiration !== undefined) properties.expiration = expiration;
  return { target: pending.target, body, properties };
}

/**
 * Decodes a delivery's body: inflates it when `contentEncoding` is `deflate`, then parses and validates the
 * envelope. Throws (or rejects with) {@link ProtocolError} for anything undecodable; the message is then refused.
 * Synchronous unless a large body is inflated on the zlib thread pool.
 */
export function decodeDelivery(
  delivery: Pick<Delivery, 'body' | 'properties'>,
): MatsEnvelope | Promise<MatsEnvelope> {
  const encoding = delivery.properties.contentEncoding;
  const body = delivery.body;
  if (encoding === undefined || encoding === '' || encoding === 'identity')
    return decodeEnvelope(body.toString('utf8'));
  if (encoding !== 'deflate')
    throw new ProtocolError(`Unsupported contentEncoding '${encoding}' on a Mats message`);
  const failed = (err: unknown): never => {
    throw new ProtocolError(`Cannot inflate Mats message body: ${(err as Error).message}`, { cause: err });
  };
  if (body.length < ASYNC_ZLIB_BYTES / 4) {
    let raw: Buffer;
    try {
      raw = inflateSync(body, { maxOutputLength: MAX_INFLATED_BODY_BYTES });
    } catch (err) {
      return failed(err);
    }
    return decodeEnvelope(raw.toString('utf8'));
  }
  return inflateAsync(body, { maxOutputLength: MAX_INFLATED_BODY_BYTES }).then(
    (raw) => decodeEnvelope(raw.toString('utf8')),
    failed,
  );
}

/** `s` cut to at most `maxBytes` UTF-8 bytes, never splitting a character. */
export function truncateUtf8(s: string, maxBytes: number): string {
  if (s.length * 3 <= maxBytes || Buffer.byteLength(s, 'utf8') <= maxBytes) return s;
  const buf = Buffer.from(s, 'utf8').subarray(0, maxBytes);
  // A cut inside a multi-byte sequence decodes to U+FFFD at the end: drop it.
  return buf.toString('utf8').replace(/\uFFFD+$/, '');
}

/** Size of a header table as counted against {@link MAX_HEADERS_TOTAL_BYTES}: UTF-8 bytes of keys and values. */
export function headersSize(headers: Readonly<Record<string, HeaderValue>>): number {
  let total = 0;
  for (const [k, v] of Object.entries(headers)) total += Buffer.byteLength(k) + Buffer.byteLength(String(v));
  return total;
}
