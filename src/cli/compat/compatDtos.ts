/**
 * The DTOs of the compatibility server (docs/compat-test-server.md 5.1). On input a missing number is 0 and a missing
 * string is null; on output null strings are omitted and numbers always written. A null string concatenated with
 * text renders as `null` (`"null:FromSingle"`), as in the reference (Java string concatenation).
 */

/** The wire shape of MatsDataTO. */
export interface MatsDataTO {
  number: number;
  string?: string;
  sleepTime: number;
  sleepIncoming: number;
}

/** The wire shape of ReplyDTO. */
export interface ReplyDTO {
  number1: number;
  number2: number;
  requestTimestamp: number;
}

/** The wire shape of PingPongDTO. */
export interface PingPongDTO {
  payload?: string;
  number?: number;
}

/** MatsDataTO as read: every field present, `string` possibly null. */
export interface MatsData {
  number: number;
  string: string | null;
  sleepTime: number;
  sleepIncoming: number;
}

/** RequestDTO as read. */
export interface RequestData {
  string: string | null;
  number: number;
  requestTimestamp: number;
}

function field(message: unknown, name: string): unknown {
  return message !== null && typeof message === 'object'
    ? (message as Record<string, unknown>)[name]
    : undefined;
}

function num(message: unknown, name: string): number {
  const v = field(message, name);
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

function int(message: unknown, name: string): number {
  return Math.trunc(num(message, name));
}

function str(message: unknown, name: string): string | null {
  const v = field(message, name);
  return typeof v === 'string' ? v : null;
}

/** Reads a MatsDataTO (anything, `{}` included). */
export function readMatsData(message: unknown): MatsData {
  return {
    number: num(message, 'number'),
    string: str(message, 'string'),
    sleepTime: int(message, 'sleepTime'),
    sleepIncoming: int(message, 'sleepIncoming'),
  };
}

/** Reads a RequestDTO (anything, `{}` included). */
export function readRequestData(message: unknown): RequestData {
  return {
    string: str(message, 'string'),
    number: num(message, 'number'),
    requestTimestamp: int(message, 'requestTimestamp'),
  };
}

/**
 * Writes a MatsDataTO the way the reference's JSON mapper does (nulls omitted, primitives always written): a null
 * string is omitted, `sleepIncoming` is always there (0 unless given).
 */
export function matsData(
  number: number,
  string: string | null,
  sleepTime: number,
  sleepIncoming = 0,
): MatsDataTO {
  return string === null
    ? { number, sleepTime, sleepIncoming }
    : { number, string, sleepTime, sleepIncoming };
}

/** `text + suffix` with a null text rendered as `null`. */
export function concat(text: string | null, suffix: string): string {
  return `${text ?? 'null'}${suffix}`;
}

/** The exact bytes of `text` in UTF-8 (correlation binaries). */
export function utf8(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'utf8'));
}

/** Byte-wise equality. */
export function sameBytes(a: Uint8Array | undefined, b: Uint8Array): boolean {
  return a !== undefined && a.length === b.length && a.every((v, i) => v === b[i]);
}

/** An awaited timer: handlers never block the event loop. */
export function sleep(ms: number): Promise<void> {
  return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();
}
