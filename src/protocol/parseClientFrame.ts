import { ProtocolError } from '../errors.ts';
import { CloseCode } from './closeCodes.ts';
import type {
  C2SAck,
  C2SAck2,
  C2SEnvelope,
  C2SHello,
  C2SPing,
  C2SPong,
  C2SReply,
  C2SRequest,
  C2SSend,
  C2SSub,
  C2SUnsub,
} from './envelopes.ts';
import { clientToServerTypes, type MessageType } from './MessageType.ts';

/** Protocol limits enforced while parsing (docs/protocol.md section 12). */
export const ParseLimits = {
  /** Max length of `an` and `av`, in characters (code points). */
  maxAppNameOrVersionLength: 255,
  /** Max length of a canonical `cmid` (also each cmid in a C→S ACK2 `ids`), in characters (code points). */
  maxCmidLength: 255,
} as const;

type RawEnvelope = Record<string, unknown>;

function violation(message: string, cause?: unknown): ProtocolError {
  return new ProtocolError(message, { closeCode: CloseCode.MATS_SOCKET_PROTOCOL_ERROR, cause });
}

function codePointLength(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** Reads and type-checks the fields of one raw envelope; every failure names the envelope and the field. */
class FieldReader {
  private readonly raw: RawEnvelope;
  private readonly where: string;

  constructor(raw: RawEnvelope, index: number, t: string) {
    this.raw = raw;
    this.where = `envelope #${index} (${t})`;
  }

  fail(field: string, problem: string): ProtocolError {
    return violation(`${this.where}: field '${field}' ${problem}`);
  }

  /** `null` counts as absent (section 2.3: clients test for undefined; some serializers write nulls). */
  private value(field: string): unknown {
    const v = this.raw[field];
    return v === null ? undefined : v;
  }

  optString(field: string): string | undefined {
    const v = this.value(field);
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw this.fail(field, `must be a string, was ${typeof v}`);
    return v;
  }

  string(field: string): string {
    const v = this.optString(field);
    if (v === undefined) throw this.fail(field, 'is required');
    return v;
  }

  nonBlankString(field: string): string {
    const v = this.string(field);
    if (v.trim() === '') throw this.fail(field, 'must not be blank');
    return v;
  }

  limitedString(field: string, maxLength: number): string {
    const v = this.string(field);
    if (codePointLength(v) > maxLength) throw this.fail(field, `is longer than ${maxLength} characters`);
    return v;
  }

  /** Section 2.4: a JSON string, or a safe non-negative integer converted to its decimal text. */
  private canonicalId(field: string, v: unknown, maxLength: number | undefined): string {
    let id: string;
    if (typeof v === 'string') id = v;
    else if (typeof v === 'number') {
      if (!Number.isSafeInteger(v) || v < 0)
        throw this.fail(field, `is not a safe non-negative integer (${v})`);
      id = String(v);
    } else throw this.fail(field, `must be a string or an integer, was ${typeof v}`);
    if (maxLength !== undefined && codePointLength(id) > maxLength) {
      throw this.fail(field, `is longer than ${maxLength} characters`);
    }
    return id;
  }

  optId(field: string, maxLength?: number): string | undefined {
    const v = this.value(field);
    return v === undefined ? undefined : this.canonicalId(field, v, maxLength);
  }

  id(field: string, maxLength?: number): string {
    const v = this.optId(field, maxLength);
    if (v === undefined) throw this.fail(field, 'is required');
    return v;
  }

  /** An `ids` batch: a non-empty array; elements are strings, or also integers when `numbersAllowed`. */
  optIds(field: string, numbersAllowed: boolean, maxLength?: number): string[] | undefined {
    const v = this.value(field);
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) throw this.fail(field, `must be an array, was ${typeof v}`);
    if (v.length === 0) throw this.fail(field, 'must not be empty');
    return v.map((element: unknown, i) => {
      if (!numbersAllowed && typeof element !== 'string') {
        throw this.fail(`${field}[${i}]`, `must be a string, was ${typeof element}`);
      }
      return this.canonicalId(`${field}[${i}]`, element, maxLength);
    });
  }

  optNonNegativeInteger(field: string): number | undefined {
    const v = this.value(field);
    if (v === undefined) return undefined;
    if (typeof v !== 'number') throw this.fail(field, `must be a number, was ${typeof v}`);
    if (!Number.isSafeInteger(v) || v < 0) throw this.fail(field, `must be a non-negative integer (${v})`);
    return v;
  }

  /** A non-negative number of milliseconds; fractions are truncated. */
  optMillis(field: string): number | undefined {
    const v = this.value(field);
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw this.fail(field, `must be a non-negative number of milliseconds (${JSON.stringify(v)})`);
    }
    return Math.trunc(v);
  }

  /** `msg` is any JSON value; `null` means "no message". */
  msg(): unknown {
    return this.value('msg');
  }
}

/** Deletes the `undefined` optional fields, so parsed envelopes never hold `undefined` values. */
function compact<T extends object>(envelope: { [K in keyof T]: T[K] | undefined }): T {
  for (const key of Object.keys(envelope) as (keyof T)[]) {
    if (envelope[key] === undefined) delete envelope[key];
  }
  return envelope as T;
}

function parseEnvelope(raw: RawEnvelope, index: number): C2SEnvelope {
  const t = raw.t;
  if (typeof t !== 'string') throw violation(`envelope #${index}: field 't' must be a string`);
  if (!clientToServerTypes.has(t as MessageType)) {
    throw violation(`envelope #${index}: unknown or server-only message type '${t}'`);
  }
  const r = new FieldReader(raw, index, t);
  const auth = r.optString('auth');
  const cmidMax = ParseLimits.maxCmidLength;
  const type = t as C2SEnvelope['t'];
  switch (type) {
    case 'HELLO':
      return compact<C2SHello>({
        t: 'HELLO',
        clv: r.string('clv'),
        an: r.limitedString('an', ParseLimits.maxAppNameOrVersionLength),
        av: r.limitedString('av', ParseLimits.maxAppNameOrVersionLength),
        sid: r.optString('sid'),
        tid: r.optString('tid'),
        auth,
      });
    case 'SEND':
      return compact<C2SSend>({
        t: 'SEND',
        eid: r.string('eid'),
        tid: r.string('tid'),
        cmid: r.id('cmid', cmidMax),
        msg: r.msg(),
        rd: r.optNonNegativeInteger('rd'),
        auth,
      });
    case 'REQUEST':
      return compact<C2SRequest>({
        t: 'REQUEST',
        eid: r.string('eid'),
        tid: r.string('tid'),
        cmid: r.id('cmid', cmidMax),
        msg: r.msg(),
        rd: r.optNonNegativeInteger('rd'),
        to: r.optMillis('to'),
        auth,
      });
    case 'RESOLVE':
    case 'REJECT':
      return compact<C2SReply>({
        t: type,
        smid: r.string('smid'),
        cmid: r.id('cmid', cmidMax),
        tid: r.string('tid'),
        msg: r.msg(),
        auth,
      });
    case 'ACK':
    case 'NACK': {
      const smid = r.optString('smid');
      const ids = r.optIds('ids', false);
      if ((smid === undefined) === (ids === undefined))
        throw r.fail('smid/ids', 'exactly one of the two is required');
      return compact<C2SAck>({ t: type, smid, ids, desc: r.optString('desc'), auth });
    }
    case 'ACK2': {
      const cmid = r.optId('cmid', cmidMax);
      const ids = r.optIds('ids', true, cmidMax);
      if (cmid === undefined && ids === undefined)
        throw r.fail('cmid/ids', 'at least one of the two is required');
      return compact<C2SAck2>({ t: 'ACK2', cmid, ids, auth });
    }
    case 'SUB':
      return compact<C2SSub>({ t: 'SUB', eid: r.nonBlankString('eid'), smid: r.optString('smid'), auth });
    case 'UNSUB':
      return compact<C2SUnsub>({ t: 'UNSUB', eid: r.nonBlankString('eid'), auth });
    case 'AUTH':
      return { t: 'AUTH', auth: r.string('auth') };
    case 'PING':
      return compact<C2SPing>({ t: 'PING', x: r.id('x'), auth });
    case 'PONG':
      return compact<C2SPong>({ t: 'PONG', x: r.optId('x'), auth });
  }
}

/**
 * Strict server-side parsing of one client text frame (docs/protocol.md sections 2.2-2.4 and 4).
 *
 * The frame must be a JSON array of objects (an empty array is valid and yields no envelopes); every `t` must be
 * a client-to-server type; required fields must be present and every known field must have its JSON type
 * (`null` counts as absent). Ids come back canonical: `cmid`, `ids` and `x` as strings, numbers converted to
 * decimal text (a number that is not a safe non-negative integer is an error). `an`, `av` and `cmid` are limited
 * to 255 characters. Unknown fields (for example the JavaScript client's `ts` and `cid`) are dropped.
 *
 * Binary frames never reach this function: the caller closes them with 4004 itself.
 *
 * @throws ProtocolError with `closeCode` 4004 on any violation.
 */
export function parseClientFrame(text: string): C2SEnvelope[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw violation('frame is not valid JSON', error);
  }
  if (!Array.isArray(parsed)) throw violation('frame is not a JSON array');
  return parsed.map((element: unknown, index) => {
    if (typeof element !== 'object' || element === null || Array.isArray(element)) {
      throw violation(`envelope #${index} is not a JSON object`);
    }
    return parseEnvelope(element as RawEnvelope, index);
  });
}
