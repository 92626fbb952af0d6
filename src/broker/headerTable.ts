import { ErrorCode, TransportError } from '../errors.ts';
import type { HeaderValue } from './Transport.ts';

/**
 * Upper bound of the AMQP field-table encoding of `headers`, in bytes: a 4-byte table length, then per entry a
 * short-string key (1 + length), a type tag and the value (long string 4 + length, numbers at most 8, booleans 1).
 */
export function headerTableSize(headers: Readonly<Record<string, HeaderValue>>): number {
  let size = 4;
  for (const [key, value] of Object.entries(headers)) {
    size += 2 + Buffer.byteLength(key);
    if (typeof value === 'string') size += 4 + Buffer.byteLength(value);
    else if (typeof value === 'number') size += 8;
    else size += 1;
  }
  return size;
}

/**
 * Throws `TRANSPORT_HEADERS_TOO_LARGE` when the headers would not encode within `maxBytes`, or hold a value other
 * than a string, finite number or boolean, or a key over 255 bytes. amqplib would throw a `RangeError` from deep
 * inside `publish` (or, before 2.3.1, corrupt the frame and lose the connection); this fails the one publish.
 */
export function checkHeaders(headers: Readonly<Record<string, HeaderValue>>, maxBytes: number): void {
  for (const [key, value] of Object.entries(headers)) {
    const t = typeof value;
    if (!(t === 'string' || t === 'boolean' || (t === 'number' && Number.isFinite(value)))) {
      throw new TransportError(
        ErrorCode.TRANSPORT_HEADERS_TOO_LARGE,
        `header '${key}' must be a string, finite number or boolean, was ${t}`,
      );
    }
    if (Buffer.byteLength(key) > 255) {
      throw new TransportError(
        ErrorCode.TRANSPORT_HEADERS_TOO_LARGE,
        `header key '${key.slice(0, 40)}…' over 255 bytes`,
      );
    }
  }
  const size = headerTableSize(headers);
  if (size > maxBytes) {
    throw new TransportError(
      ErrorCode.TRANSPORT_HEADERS_TOO_LARGE,
      `header table of ${size} bytes exceeds the limit of ${maxBytes} bytes`,
    );
  }
}
