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

/**
 * Limits on what one client frame may carry, beyond the spec's (the server's `limits` options of the same names
 * document them). Past a count or id-length limit the frame is a protocol violation (4004); `to` and `desc` are
 * clamped instead, since a smaller value is still a valid message.
 */
export interface ClientFrameLimits {
  maxEnvelopesPerFrame: number;
  maxIdsPerEnvelope: number;
  maxIdsPerFrame: number;
  /** A smid the client sends back (ACK/NACK, RESOLVE/REJECT, SUB). */
  maxServerMessageIdLength: number;
  /** A REQUEST's `to`, ms: larger is clamped. */
  maxClientTimeoutMs: number;
  /** An ACK/NACK `desc`, in characters: longer is truncated. */
  maxDescriptionLength: number;
}

/** The defaults of the server's options. */
export const defaultClientFrameLimits: ClientFrameLimits = {
  maxEnvelopesPerFrame: 10_000,
  maxIdsPerEnvelope: 5000,
  maxIdsPerFrame: 10_000,
  maxServerMessageIdLength: 64,
  maxClientTimeoutMs: 24 * 3600_000,
  maxDescriptionLength: 1024,
};

/** Told the name of each limit that tripped (the option's name), for metrics; clamps included. */
export type LimitListener = (limit: keyof ClientFrameLimits) => void;

/** Every defined debug bit (`DebugOption`): the low byte of `rd`, so no other bits reach the session state. */
const RD_BITS = 0xff;

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
  private readonly limits: ClientFrameLimits;
  private readonly onLimit: LimitListener;

  constructor(raw: RawEnvelope, index: number, t: string, limits: ClientFrameLimits, onLimit: LimitListener) {
    this.raw = raw;
    this.where = `envelope #${index} (${t})`;
    this.limits = limits;
    this.onLimit = onLimit;
  }

  private overLimit(field: string, limit: keyof ClientFrameLimits, problem: string): ProtocolError {
    this.onLimit(limit);
    return this.fail(field, problem);
  }

  /** A smid sent back by the client: longer than any the server makes is malformed. */
  smid(field: string): string {
    return this.checkSmid(field, this.string(field));
  }

  optSmid(field: string): string | undefined {
    const v = this.optString(field);
    return v === undefined ? undefined : this.checkSmid(field, v);
  }

  private checkSmid(field: string, v: string): string {
    const max = this.limits.maxServerMessageIdLength;
    if (v.length > max) {
      throw this.overLimit(field, 'maxServerMessageIdLength', `is longer than ${max} characters`);
    }
    return v;
  }

  /** Human-readable text: truncated, not refused. */
  optDescription(field: string): string | undefined {
    const v = this.optString(field);
    const max = this.limits.maxDescriptionLength;
    if (v === undefined || v.length <= max) return v;
    this.onLimit('maxDescriptionLength');
    return Array.from(v.slice(0, max * 2))
      .slice(0, max)
      .join('');
  }

  /** `rd`: a bit field; only the defined (low) bits are kept. */
  optDebugBits(field: string): number | undefined {
    const v = this.optNonNegativeInteger(field);
    return v === undefined ? undefined : v % (RD_BITS + 1);
  }

  /** `to`: clamped, since it becomes a broker TTL (RabbitMQ refuses more than 2^32-1 ms). */
  optClientTimeout(field: string): number | undefined {
    const v = this.optMillis(field);
    const max = this.limits.maxClientTimeoutMs;
    if (v === undefined || v <= max) return v;
    this.onLimit('maxClientTimeoutMs');
    return max;
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
  optIds(field: string, numbersAllowed: boolean, maxLength: number): string[] | undefined {
    const v = this.value(field);
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) throw this.fail(field, `must be an array, was ${typeof v}`);
    if (v.length === 0) throw this.fail(field, 'must not be empty');
    if (v.length > this.limits.maxIdsPerEnvelope) {
      throw this.overLimit(field, 'maxIdsPerEnvelope', `has more than ${this.limits.maxIdsPerEnvelope} ids`);
    }
    return v.map((element: unknown, i) => {
      if (!numbersAllowed && typeof element !== 'string') {
        throw this.fail(`${field}[${i}]`, `must be a string, was ${typeof element}`);
      }
      // Numbers allowed: cmids (spec limit, 4004); otherwise smids, which the server made (an option's limit).
      if (numbersAllowed) return this.canonicalId(`${field}[${i}]`, element, maxLength);
      return this.checkSmid(`${field}[${i}]`, element as string);
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

function parseEnvelope(
  raw: RawEnvelope,
  index: number,
  limits: ClientFrameLimits,
  onLimit: LimitListener,
): C2SEnvelope {
  const t = raw.t;
  if (typeof t !== 'string') throw violation(`envelope #${index}: field 't' must be a string`);
  if (!clientToServerTypes.has(t as MessageType)) {
    throw violation(`envelope #${index}: unknown or server-only message type '${t}'`);
  }
  const r = new FieldReader(raw, index, t, limits, onLimit);
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
        rd: r.optDebugBits('rd'),
        auth,
      });
    case 'REQUEST':
      return compact<C2SRequest>({
        t: 'REQUEST',
        eid: r.string('eid'),
        tid: r.string('tid'),
        cmid: r.id('cmid', cmidMax),
        msg: r.msg(),
        rd: r.optDebugBits('rd'),
        to: r.optClientTimeout('to'),
        auth,
      });
    case 'RESOLVE':
    case 'REJECT':
      return compact<C2SReply>({
        t: type,
        smid: r.smid('smid'),
        cmid: r.id('cmid', cmidMax),
        tid: r.string('tid'),
        msg: r.msg(),
        auth,
      });
    case 'ACK':
    case 'NACK': {
      const smid = r.optSmid('smid');
      const ids = r.optIds('ids', false, limits.maxServerMessageIdLength);
      if ((smid === undefined) === (ids === undefined))
        throw r.fail('smid/ids', 'exactly one of the two is required');
      return compact<C2SAck>({ t: type, smid, ids, desc: r.optDescription('desc'), auth });
    }
    case 'ACK2': {
      const cmid = r.optId('cmid', cmidMax);
      const ids = r.optIds('ids', true, cmidMax);
      if (cmid === undefined && ids === undefined)
        throw r.fail('cmid/ids', 'at least one of the two is required');
      return compact<C2SAck2>({ t: 'ACK2', cmid, ids, auth });
    }
    case 'SUB':
      return compact<C2SSub>({ t: 'SUB', eid: r.nonBlankString('eid'), smid: r.optSmid('smid'), auth });
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
 * `limits` bound the envelopes and ids of a frame and the smids sent back (4004), and clamp `to` and `desc`;
 * `rd` keeps only its defined bits. `onLimit` hears of every limit that tripped.
 *
 * Binary frames never reach this function: the caller closes them with 4004 itself.
 *
 * @throws ProtocolError with `closeCode` 4004 on any violation.
 */
export function parseClientFrame(
  text: string,
  limits: ClientFrameLimits = defaultClientFrameLimits,
  onLimit: LimitListener = () => undefined,
): C2SEnvelope[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw violation('frame is not valid JSON', error);
  }
  if (!Array.isArray(parsed)) throw violation('frame is not a JSON array');
  if (parsed.length > limits.maxEnvelopesPerFrame) {
    onLimit('maxEnvelopesPerFrame');
    throw violation(`frame has more than ${limits.maxEnvelopesPerFrame} envelopes`);
  }
  let ids = 0;
  return parsed.map((element: unknown, index) => {
    if (typeof element !== 'object' || element === null || Array.isArray(element)) {
      throw violation(`envelope #${index} is not a JSON object`);
    }
    const envelope = parseEnvelope(element as RawEnvelope, index, limits, onLimit);
    if ('ids' in envelope && envelope.ids && (ids += envelope.ids.length) > limits.maxIdsPerFrame) {
      onLimit('maxIdsPerFrame');
      throw violation(`frame has more than ${limits.maxIdsPerFrame} ids in its ACK/NACK/ACK2 envelopes`);
    }
    return envelope;
  });
}
