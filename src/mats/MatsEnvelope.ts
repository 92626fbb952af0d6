import { ProtocolError } from '../errors.ts';

/** Version tag of the envelope format; a receiver refuses (dead-letters) other versions. */
export const ENVELOPE_VERSION = 1;

/** The kind of the current call (`docs/mats-semantics.md` 1.7). */
export type CallType = 'REQUEST' | 'SEND' | 'NEXT' | 'REPLY' | 'GOTO' | 'PUBLISH';

const CALL_TYPES: ReadonlySet<string> = new Set<CallType>([
  'REQUEST',
  'SEND',
  'NEXT',
  'REPLY',
  'GOTO',
  'PUBLISH',
]);

/** How much history an envelope carries: COMPACT (default) only what later stages need; FULL adds the call history. */
export type KeepTrace = 'FULL' | 'COMPACT' | 'MINIMAL';

const KEEP_TRACES: ReadonlySet<string> = new Set<KeepTrace>(['FULL', 'COMPACT', 'MINIMAL']);

/** An address: a stage (consumed from its queue) or a subscription terminator (fed by a topic). */
export interface Channel {
  id: string;
  kind: 'queue' | 'topic';
}

/** The state object (STO) of the stage that will run at stack height `h`. */
export interface StackState {
  h: number;
  sto: unknown;
}

/** One earlier call, kept with `keepTrace: FULL` only (debugging). */
export interface HistoryEntry {
  type: CallType;
  id: string;
  from: string;
  to: string;
  app: string;
  node: string;
  ts: number;
  data?: unknown;
}

/** Who created a flow. */
export interface InitiationInfo {
  app: string;
  ver: string;
  node: string;
  /** initiatorId given with `from(...)`. */
  id: string;
  /** Epoch ms. */
  ts: number;
}

/** Who sent this message (the previous hop). */
export interface SenderInfo {
  app: string;
  ver: string;
  node: string;
  /** Epoch ms. */
  ts: number;
}

/**
 * The self-contained message body (JSON). See `docs/mats-wire-format.md` for the normative description. Optional
 * fields are omitted when false/empty.
 */
export interface MatsEnvelope {
  v: typeof ENVELOPE_VERSION;
  flowId: string;
  /** matsMessageId of this message. */
  id: string;
  /** matsMessageId of the message whose processing produced this one (absent for initiations). */
  parentId?: string;
  traceId: string;
  init: InitiationInfo;
  from: SenderInfo;
  np?: boolean;
  ia?: boolean;
  na?: boolean;
  /** Time-to-live in ms per hop (only with `np`). */
  ttl?: number;
  /** Call number within this flow (1 for the initiation). */
  callNo: number;
  /** Call number across parent and child flows (not reset in child flows). */
  totalCallNo: number;
  call: { type: CallType; from: string; to: Channel };
  /** Reply stack; the last element is where the next REPLY goes. */
  stack: Channel[];
  states: StackState[];
  /** Trace properties (sticky for the flow), values are JSON. */
  tp?: Record<string, unknown>;
  /** Sideloads for this message only: strings, and bytes as base64. */
  sl?: { s?: Record<string, string>; b?: Record<string, string> };
  /** Omitted on the wire when COMPACT (the default). */
  keepTrace: KeepTrace;
  /** How many times this message had been dead-lettered when it was created (DLQ headers carry later counts); omitted when 0. */
  dlqCount: number;
  history?: HistoryEntry[];
  /** The DTO. */
  data: unknown;
}

/** A state that is already serialized (serialization happens at call time). */
export interface SerializedState {
  h: number;
  json: string;
}

/** Everything of an envelope except `states` and `data` (given already serialized); defaults may be omitted. */
export type EnvelopeHead = Omit<MatsEnvelope, 'states' | 'data' | 'keepTrace' | 'dlqCount'> &
  Partial<Pick<MatsEnvelope, 'keepTrace' | 'dlqCount'>>;

/**
 * Serializes an envelope whose DTO and states were serialized earlier (at call time): the JSON texts are spliced
 * in verbatim, so they are not parsed and serialized a second time.
 */
export function encodeEnvelope(
  head: EnvelopeHead,
  states: readonly SerializedState[],
  dataJson: string,
): string {
  const headJson = JSON.stringify(head);
  let statesJson = '';
  for (const s of states) statesJson += `${statesJson.length > 0 ? ',' : ''}{"h":${s.h},"sto":${s.json}}`;
  return `${headJson.slice(0, -1)},"states":[${statesJson}],"data":${dataJson}}`;
}

/** JSON text of a value; `undefined` (and functions) become `null`, so the result is always valid JSON. */
export function toJson(value: unknown): string {
  return JSON.stringify(value) ?? 'null';
}

/**
 * Parses and validates an envelope. Throws {@link ProtocolError} when it is not a version-1 envelope with the
 * required fields; the stage then dead-letters the message at once (it can never succeed).
 */
export function decodeEnvelope(json: string): MatsEnvelope {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (err) {
    throw new ProtocolError(`Mats envelope is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  const e = parsed as Partial<MatsEnvelope> | null;
  if (!e || typeof e !== 'object') throw new ProtocolError('Mats envelope is not a JSON object');
  if (e.v !== ENVELOPE_VERSION) throw new ProtocolError(`Unsupported Mats envelope version '${String(e.v)}'`);
  requireString(e.flowId, 'flowId');
  requireString(e.id, 'id');
  requireString(e.traceId, 'traceId');
  if (!e.init || typeof e.init !== 'object') throw new ProtocolError('Mats envelope lacks init');
  if (!e.from || typeof e.from !== 'object') throw new ProtocolError('Mats envelope lacks from');
  if (!e.call || typeof e.call !== 'object' || !CALL_TYPES.has(e.call.type)) {
    throw new ProtocolError('Mats envelope lacks a valid call');
  }
  requireChannel(e.call.to, 'call.to');
  if (!Array.isArray(e.stack)) throw new ProtocolError('Mats envelope lacks stack');
  for (let i = 0; i < e.stack.length; i++) requireChannel(e.stack[i], 'stack', i);
  if (!Array.isArray(e.states)) throw new ProtocolError('Mats envelope lacks states');
  for (const s of e.states) {
    if (!s || typeof s !== 'object' || typeof s.h !== 'number')
      throw new ProtocolError('Mats envelope state');
  }
  requireNumber(e.callNo, 'callNo');
  requireNumber(e.totalCallNo, 'totalCallNo');
  if (e.keepTrace === undefined) e.keepTrace = 'COMPACT';
  else if (!KEEP_TRACES.has(e.keepTrace)) throw new ProtocolError(`Bad keepTrace '${String(e.keepTrace)}'`);
  if (e.dlqCount === undefined) e.dlqCount = 0;
  // It reaches a header of the dead-letter copy: a non-count there (NaN) made the DLQ publish fail, for ever.
  else if (!Number.isSafeInteger(e.dlqCount) || e.dlqCount < 0)
    throw new ProtocolError(`Bad dlqCount '${String(e.dlqCount)}'`);
  if (!('data' in e)) e.data = null;
  return e as MatsEnvelope;
}

function requireString(value: unknown, field: string): void {
  if (typeof value !== 'string') throw new ProtocolError(`Mats envelope field '${field}' must be a string`);
}

function requireNumber(value: unknown, field: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new ProtocolError(`Mats envelope field '${field}' must be a number`);
  }
}

/** `index`: the position in an array field (the field name is only formatted for the error). */
function requireChannel(value: unknown, field: string, index?: number): void {
  const c = value as Partial<Channel> | null;
  if (!c || typeof c !== 'object' || typeof c.id !== 'string' || (c.kind !== 'queue' && c.kind !== 'topic')) {
    const name = index === undefined ? field : `${field}[${index}]`;
    throw new ProtocolError(`Mats envelope field '${name}' must be a channel {id, kind: queue|topic}`);
  }
}
