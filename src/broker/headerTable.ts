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
  // One pass with an upper bound from string lengths (a UTF-16 unit is at most 3 UTF-8 bytes): the exact byte
  // counts are only computed when the bound does not already prove the table small enough.
  let bound = 4;
  for (const key in headers) {
    const value = headers[key];
    const t = typeof value;
    if (t === 'string') bound += 6 + 3 * (key.length + (value as string).length);
    else if (t === 'boolean' || (t === 'number' && Number.isFinite(value))) bound += 10 + 3 * key.length;
    else {
      throw new TransportError(
        ErrorCode.TRANSPORT_HEADERS_TOO_LARGE,
        `header '${key}' must be a string, finite number or boolean, was ${t}`,
      );
    }
    if (key.length > 85 && Buffer.byteLength(key) > 255) {
      throw new TransportError(
        ErrorCode.TRANSPORT_HEADERS_TOO_LARGE,
        `header key '${key.slice(0, 40)}…' over 255 bytes`,
      );
    }
  }
  if (bound <= maxBytes) return;
  const size = headerTableSize(headers);
  if (size > maxBytes) {
    throw new TransportError(
      ErrorCode.TRANSPORT_HEADERS_TOO_LARGE,
      `header table of ${size} bytes exceeds the limit of ${maxBytes} bytes`,
    );
  }
}
