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
  const headers: Record<string, HeaderValue> = {};
  for (const [k, v] of Object.entries(delivery.properties.headers ?? {})) {
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') {
      headers[k] = typeof v === 'string' ? truncateUtf8(v, MAX_HEADER_VALUE_BYTES) : v;
    }
  }
  const previous = Number(headers[MatsHeader.DLQ_DLQ_COUNT] ?? 0);
  const dlqCount = Math.max(Number.isFinite(previous) ? previous : 0, cause.envelopeDlqCount ?? 0) + 1;
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
