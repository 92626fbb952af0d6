import { jsonDepthExceeds } from '../protocol/messageDepth.ts';
import { ServerApiError } from './ServerApiError.ts';

/** Bounds the server API checks requests against (the resolved `ServerApiOptions.limits`). */
export interface ServerApiLimits {
  /** Longest session, terminator, topic and user id, in characters. */
  maxIdLength: number;
  /** Longest trace id, in characters. */
  maxTraceIdLength: number;
  /** Deepest nesting of `message`. */
  maxMessageDepth: number;
  /** Longest close reason, in characters. */
  maxReasonLength: number;
  /** Most sessions one `GET sessions` returns. */
  maxPageSize: number;
  /** Largest `offset` of `GET sessions` (deeper pages: use `after`). */
  maxOffset: number;
}

export interface PublishRequest {
  topicId: string;
  message: unknown;
  traceId: string | undefined;
}

export interface SendRequest {
  sessionId: string;
  terminatorId: string;
  message: unknown;
  traceId: string | undefined;
}

export interface SendToUserRequest {
  userId: string;
  terminatorId: string;
  message: unknown;
  traceId: string | undefined;
}

export interface CloseSessionRequest {
  sessionId: string;
  reason: string | undefined;
}

export interface SessionsQuery {
  userId: string | undefined;
  limit: number;
  offset: number;
  after: string | undefined;
}

function invalid(message: string): ServerApiError {
  return new ServerApiError('INVALID_ARGUMENT', message);
}

/** The body as an object with only the `allowed` keys. */
function fields(body: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw invalid('the body must be a JSON object');
  }
  const unknown = Object.keys(body).filter((k) => !allowed.includes(k));
  if (unknown.length > 0) throw invalid(`unknown field(s): ${unknown.slice(0, 5).join(', ')}`);
  return body as Record<string, unknown>;
}

function text(value: unknown, name: string, maxLength: number): string {
  if (typeof value !== 'string') throw invalid(`${name} must be a string`);
  if (value.length === 0) throw invalid(`${name} must not be empty`);
  if (value.length > maxLength) throw invalid(`${name} must be at most ${maxLength} characters`);
  return value;
}

function optionalText(value: unknown, name: string, maxLength: number): string | undefined {
  return value === undefined ? undefined : text(value, name, maxLength);
}

function message(body: Record<string, unknown>, limits: ServerApiLimits): unknown {
  if (!('message' in body)) throw invalid('message is required (null is a message)');
  // JSON.parse builds any depth; serializing it again (into the outbox) would overflow the stack.
  if (jsonDepthExceeds(body.message, limits.maxMessageDepth)) {
    throw invalid(`message nests deeper than ${limits.maxMessageDepth}`);
  }
  return body.message;
}

export function parsePublishRequest(body: unknown, limits: ServerApiLimits): PublishRequest {
  const b = fields(body, ['topicId', 'message', 'traceId']);
  return {
    topicId: text(b.topicId, 'topicId', limits.maxIdLength),
    message: message(b, limits),
    traceId: optionalText(b.traceId, 'traceId', limits.maxTraceIdLength),
  };
}

export function parseSendRequest(body: unknown, limits: ServerApiLimits): SendRequest {
  const b = fields(body, ['sessionId', 'terminatorId', 'message', 'traceId']);
  return {
    sessionId: text(b.sessionId, 'sessionId', limits.maxIdLength),
    terminatorId: text(b.terminatorId, 'terminatorId', limits.maxIdLength),
    message: message(b, limits),
    traceId: optionalText(b.traceId, 'traceId', limits.maxTraceIdLength),
  };
}

export function parseSendToUserRequest(body: unknown, limits: ServerApiLimits): SendToUserRequest {
  const b = fields(body, ['userId', 'terminatorId', 'message', 'traceId']);
  return {
    userId: text(b.userId, 'userId', limits.maxIdLength),
    terminatorId: text(b.terminatorId, 'terminatorId', limits.maxIdLength),
    message: message(b, limits),
    traceId: optionalText(b.traceId, 'traceId', limits.maxTraceIdLength),
  };
}

export function parseCloseSessionRequest(body: unknown, limits: ServerApiLimits): CloseSessionRequest {
  const b = fields(body, ['sessionId', 'reason']);
  return {
    sessionId: text(b.sessionId, 'sessionId', limits.maxIdLength),
    reason: optionalText(b.reason, 'reason', limits.maxReasonLength),
  };
}

function integer(params: URLSearchParams, name: string, fallback: number, min: number, max: number): number {
  const raw = params.get(name);
  if (raw === null) return fallback;
  if (!/^\d{1,9}$/.test(raw)) throw invalid(`${name} must be an integer`);
  const n = Number(raw);
  if (n < min || n > max) throw invalid(`${name} must be between ${min} and ${max}`);
  return n;
}

/** `GET sessions`: `userId`, `limit` (default 100), and either `offset` or `after` (a session id). */
export function parseSessionsQuery(params: URLSearchParams, limits: ServerApiLimits): SessionsQuery {
  const known = ['userId', 'limit', 'offset', 'after'];
  const names = [...new Set(params.keys())];
  const unknown = names.filter((k) => !known.includes(k));
  if (unknown.length > 0) throw invalid(`unknown query parameter(s): ${unknown.slice(0, 5).join(', ')}`);
  const repeated = names.filter((k) => params.getAll(k).length > 1);
  if (repeated.length > 0) throw invalid(`query parameter(s) given twice: ${repeated.join(', ')}`);
  const after = params.get('after') ?? undefined;
  if (after !== undefined && params.has('offset')) throw invalid('give offset or after, not both');
  return {
    userId: optionalText(params.get('userId') ?? undefined, 'userId', limits.maxIdLength),
    limit: integer(params, 'limit', Math.min(100, limits.maxPageSize), 1, limits.maxPageSize),
    offset: integer(params, 'offset', 0, 0, limits.maxOffset),
    after: optionalText(after, 'after', limits.maxIdLength),
  };
}
