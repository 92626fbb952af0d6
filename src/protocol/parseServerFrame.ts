import { ProtocolError } from '../errors.ts';
import { CloseCode } from './closeCodes.ts';
import type { DebugInfo, S2CEnvelope } from './envelopes.ts';
import { serverToClientTypes, type MessageType } from './MessageType.ts';

/** The result of lenient parsing: the usable envelopes, and a description of each one that was skipped. */
export interface ParsedServerFrame {
  envelopes: S2CEnvelope[];
  /** One line per skipped element or dropped field (unknown type, missing required field, wrong type). */
  problems: string[];
}

type RawEnvelope = Record<string, unknown>;

/** A lenient id: strings as they are, finite numbers as decimal text (servers should send strings). */
function looseId(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return undefined;
}

function looseIds(v: unknown): string[] | undefined {
  if (!Array.isArray(v)) return undefined;
  const ids = v.map(looseId).filter((id): id is string => id !== undefined);
  return ids.length > 0 ? ids : undefined;
}

function looseString(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function looseDebug(v: unknown): DebugInfo | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? v : undefined;
}

/** Builds an envelope object with only the defined fields. */
function defined(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields))
    if (value !== undefined && value !== null) out[key] = value;
  return out;
}

const required: Partial<Record<MessageType, readonly string[]>> = {
  WELCOME: ['sid'],
  SEND: ['eid', 'smid', 'tid'],
  REQUEST: ['eid', 'smid', 'tid'],
  RESOLVE: ['cmid', 'tid'],
  REJECT: ['cmid', 'tid'],
  RETRY: ['cmid'],
  SUB_OK: ['eid'],
  SUB_LOST: ['eid'],
  SUB_NO_AUTH: ['eid'],
  PUB: ['eid', 'smid', 'tid'],
  PONG: ['x'],
};

function normalize(raw: RawEnvelope, t: MessageType): Record<string, unknown> {
  return defined({
    t,
    sid: looseString(raw.sid),
    eid: looseString(raw.eid),
    tid: looseId(raw.tid),
    smid: looseId(raw.smid),
    cmid: looseId(raw.cmid),
    ids: looseIds(raw.ids),
    x: looseId(raw.x),
    desc: looseString(raw.desc),
    msg: raw.msg,
    debug: looseDebug(raw.debug),
  });
}

/**
 * Lenient client-side parsing of one server text frame. Only a frame that is not a JSON array throws (nothing in
 * it is usable). Elements that are not objects, have an unknown `t`, or lack a required field are skipped and
 * described in `problems`; numeric ids are converted to strings; `null` fields count as absent. ACK/NACK without
 * `cmid`/`ids` and ACK2 without `smid`/`ids` are skipped too, since there is nothing to acknowledge.
 *
 * @throws ProtocolError (close code 4004) if the frame is not a JSON array.
 */
export function parseServerFrame(text: string): ParsedServerFrame {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ProtocolError('server frame is not valid JSON', {
      cause: error,
      closeCode: CloseCode.MATS_SOCKET_PROTOCOL_ERROR,
    });
  }
  if (!Array.isArray(parsed)) {
    throw new ProtocolError('server frame is not a JSON array', {
      closeCode: CloseCode.MATS_SOCKET_PROTOCOL_ERROR,
    });
  }
  const envelopes: S2CEnvelope[] = [];
  const problems: string[] = [];
  parsed.forEach((element: unknown, index) => {
    if (typeof element !== 'object' || element === null || Array.isArray(element)) {
      problems.push(`envelope #${index} is not an object: skipped`);
      return;
    }
    const raw = element as RawEnvelope;
    const t = raw.t;
    if (typeof t !== 'string' || !serverToClientTypes.has(t as MessageType)) {
      problems.push(`envelope #${index} has unknown type '${String(t)}': skipped`);
      return;
    }
    const envelope = normalize(raw, t as MessageType);
    const missing = (required[t as MessageType] ?? []).filter((field) => envelope[field] === undefined);
    if ((t === 'ACK' || t === 'NACK') && envelope.cmid === undefined && envelope.ids === undefined) {
      missing.push('cmid/ids');
    }
    if (t === 'ACK2' && envelope.smid === undefined && envelope.ids === undefined) missing.push('smid/ids');
    if (missing.length > 0) {
      problems.push(`envelope #${index} (${t}) lacks ${missing.join(', ')}: skipped`);
      return;
    }
    envelopes.push(envelope as unknown as S2CEnvelope);
  });
  return { envelopes, problems };
}
