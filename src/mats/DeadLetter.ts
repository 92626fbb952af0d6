import type { Delivery, HeaderValue, OutgoingMessage } from '../broker/Transport.ts';
import {
  dlqName,
  headersSize,
  MatsHeader,
  MAX_HEADER_VALUE_BYTES,
  MAX_HEADERS_TOTAL_BYTES,
  truncateUtf8,
} from './MatsWire.ts';

/** Why a message is dead-lettered. */
export interface DeadLetterCause {
  error: unknown;
  /** Refusal (refuse error, overflow, undecodable): `mats_dlq_Refused: 'true'`. */
  refused: boolean;
  /** The attempt number at which it was diverted. */
  attempt: number;
  /** The envelope's dlqCount, when the body could be decoded. */
  envelopeDlqCount: number | undefined;
}

export interface DeadLetterSource {
  queuePrefix: string;
  stageId: string;
  appName: string;
  appVersion: string;
  nodeName: string;
  stageOrigin: string;
  now: number;
}

/**
 * The dead-letter copy of a delivery (`docs/mats-semantics.md` 3): same body, same properties (without the per-hop
 * expiration: a dead letter must not expire), headers extended with the `mats_dlq_*` annotations, each value at
 * most 4 KiB and the whole table at most 16 KiB (the exception text is cut to fit).
 */
export function deadLetterMessage(
  delivery: Pick<Delivery, 'body' | 'properties'>,
  cause: DeadLetterCause,
  source: DeadLetterSource,
): OutgoingMessage {
  const headers = copyHeaders(delivery.properties.headers ?? {});
  const dlqCount = Math.max(countOf(headers[MatsHeader.DLQ_DLQ_COUNT]), countOf(cause.envelopeDlqCount)) + 1;
  headers[MatsHeader.DLQ_REFUSED] = cause.refused ? 'true' : 'false';
  headers[MatsHeader.DLQ_DELIVERY_COUNT] = cause.attempt;
  headers[MatsHeader.DLQ_DLQ_COUNT] = dlqCount;
  headers[MatsHeader.DLQ_APP_AND_VERSION] = truncateUtf8(
    `${source.appName};${source.appVersion}`,
    MAX_HEADER_VALUE_BYTES,
  );
  headers[MatsHeader.DLQ_NODE] = truncateUtf8(source.nodeName, MAX_HEADER_VALUE_BYTES);
  headers[MatsHeader.DLQ_STAGE_ORIGIN] = truncateUtf8(source.stageOrigin, MAX_HEADER_VALUE_BYTES);
  headers[MatsHeader.DLQ_TIMESTAMP] = source.now;
  headers[MatsHeader.DLQ_EXCEPTION] = '';
  // Whatever room is left (within the per-value cap) goes to the exception text.
  const room = MAX_HEADERS_TOTAL_BYTES - headersSize(headers);
  headers[MatsHeader.DLQ_EXCEPTION] = truncateUtf8(
    describeError(cause.error),
    Math.max(0, Math.min(MAX_HEADER_VALUE_BYTES, room)),
  );
  const { expiration: _expiration, ...properties } = delivery.properties;
  return {
    target: { kind: 'queue', name: dlqName(source.queuePrefix, source.stageId) },
    body: delivery.body,
    properties: { ...properties, headers },
  };
}

/**
 * Room the dead-letter annotations keep for themselves within {@link MAX_HEADERS_TOTAL_BYTES}: the copied headers
 * get the rest, so the copy is always publishable (a message whose dead-letter copy the broker refused was
 * requeued for ever).
 */
const ANNOTATION_ROOM_BYTES = 6 * 1024;

/**
 * The incoming headers a dead letter keeps: the Mats wire's own (`mats_*`) first, then the others, each value cut
 * to {@link MAX_HEADER_VALUE_BYTES}, while the total stays within its share; the old `mats_dlq_*` annotations are
 * replaced. Non-primitive values are dropped.
 */
function copyHeaders(incoming: Readonly<Record<string, unknown>>): Record<string, HeaderValue> {
  const headers: Record<string, HeaderValue> = {};
  const budget = MAX_HEADERS_TOTAL_BYTES - ANNOTATION_ROOM_BYTES;
  let used = 0;
  const entries = Object.entries(incoming);
  const ordered = [
    ...entries.filter(([k]) => k.startsWith('mats_')),
    ...entries.filter(([k]) => !k.startsWith('mats_')),
  ];
  for (const [k, v] of ordered) {
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') continue;
    const value = typeof v === 'string' ? truncateUtf8(v, MAX_HEADER_VALUE_BYTES) : v;
    const size = Buffer.byteLength(k) + Buffer.byteLength(String(value));
    if (k === MatsHeader.DLQ_DLQ_COUNT)
      headers[k] = value; // read below, then overwritten
    else if (k.startsWith('mats_dlq_') || used + size > budget) continue;
    else {
      headers[k] = value;
      used += size;
    }
  }
  return headers;
}

/** A dead-letter count from a header or an envelope: anything but a count (a string, NaN, -1) is 0. */
function countOf(value: unknown): number {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : 0;
}

/** At most this many stack frames per error in a dead letter or log line: the cause chain matters more. */
const MAX_FRAMES = 12;

/**
 * `Class: message [code]` plus the stack frames, then the same for each `cause`. Messages are freed of the SQL knex
 * prefixes them with (a failed outbox insert would otherwise carry every body, in hex, into the header).
 */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const frames = (error.stack ?? '')
      .split('\n')
      .filter((l) => /^\s+at /.test(l))
      .slice(0, MAX_FRAMES);
    let text = [errorHead(error), ...frames].join('\n');
    if (error.cause !== undefined) text += `\nCaused by: ${describeError(error.cause)}`;
    return text;
  }
  return withoutSql(String(error));
}

/**
 * One short line for a failure: `Class: message [code]` of the error and of each cause, no stack, no SQL; at most
 * `maxChars` characters (for `last_error` columns, dead-letter reasons and warnings logged per row).
 */
export function briefError(error: unknown, maxChars = 500): string {
  const parts: string[] = [];
  for (let e = error, depth = 0; e !== undefined && depth < 5; depth++) {
    parts.push(e instanceof Error ? errorHead(e) : withoutSql(typeof e === 'string' ? e : JSON.stringify(e)));
    e = e instanceof Error ? e.cause : undefined;
  }
  const text = parts.join(' <- ');
  return text.length <= maxChars ? text : `${text.slice(0, maxChars - 1)}…`;
}

function errorHead(error: Error): string {
  const code = (error as { code?: unknown }).code;
  const tag = typeof code === 'string' || typeof code === 'number' ? ` [${code}]` : '';
  return `${error.name}: ${withoutSql(error.message)}${tag}`;
}

/** knex reports `<sql with inlined bindings> - <driver message>`: keep the driver's message. */
function withoutSql(message: string): string {
  let text = message;
  const sql = /\b(?:insert into|update\s+\S+\s+set|delete from|select)\s/i.exec(text);
  const dash = sql ? text.lastIndexOf(' - ') : -1;
  if (sql && dash > sql.index) text = `${text.slice(0, sql.index)}${text.slice(dash + 3)}`;
  return text.length > 1000 ? `${text.slice(0, 999)}…` : text;
}
