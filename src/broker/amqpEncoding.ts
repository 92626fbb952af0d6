/**
 * Primitives of the AMQP 0-9-1 wire encoding for {@link encodePublishFrames}: integers, short strings and field
 * tables, written into a buffer the caller has sized. Field tables follow amqplib's `codec.js` choices exactly
 * (long strings, `t` booleans, the smallest signed integer type, `d` for non-integers), so the bytes are the ones
 * amqplib would write.
 */

// Unchecked big-endian writes: callers size the buffer first (Buffer's own methods check every offset).
export function writeUInt16(out: Buffer, o: number, v: number): number {
  out[o] = v >>> 8;
  out[o + 1] = v;
  return o + 2;
}

export function writeUInt32(out: Buffer, o: number, v: number): number {
  out[o] = v >>> 24;
  out[o + 1] = v >>> 16;
  out[o + 2] = v >>> 8;
  out[o + 3] = v;
  return o + 4;
}

/** `v`: a non-negative safe integer. */
export function writeUInt64(out: Buffer, o: number, v: number): number {
  writeUInt32(out, o, Math.floor(v / 0x100000000));
  return writeUInt32(out, o + 4, v >>> 0);
}

export function isOctet(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 255;
}

/** Byte length of a short-string property: -1 when absent, -2 when not a string of at most 255 bytes. */
export function shortLen(value: unknown): number {
  if (value === undefined || value === null) return -1;
  if (typeof value !== 'string') return -2;
  const len = utf8Length(value);
  return len > 255 ? -2 : len;
}

export function writeShort(out: Buffer, o: number, value: string, len: number): number {
  out[o] = len;
  writeUtf8(out, o + 1, value, len);
  return o + 1 + len;
}

/**
 * UTF-8 byte length of `s`. Header keys, ids and names are short and ASCII: a JS loop over them is several times
 * cheaper than a call into `Buffer.byteLength`.
 */
export function utf8Length(s: string): number {
  const n = s.length;
  if (n > 64) return Buffer.byteLength(s);
  for (let i = 0; i < n; i++) if (s.charCodeAt(i) > 0x7f) return Buffer.byteLength(s);
  return n;
}

/** Writes `s`, whose UTF-8 length is `len`, at `o` (ASCII by a JS loop, like {@link utf8Length}). */
export function writeUtf8(out: Buffer, o: number, s: string, len: number): void {
  if (len !== s.length || len > 64) {
    out.write(s, o, len, 'utf8');
    return;
  }
  for (let i = 0; i < len; i++) out[o + i] = s.charCodeAt(i);
}

/** amqplib's choice of number type in a field table (`codec.js`): double for non-integers, else the smallest int. */
function numberTag(n: number): 'd' | 'b' | 's' | 'I' | 'l' | undefined {
  if (n >= 0x8000000000000000 || (Math.abs(n) < 0x4000000000000 && Math.floor(n) !== n)) return 'd';
  if (!Number.isInteger(n) || n < -0x8000000000000000) return undefined;
  if (n < 128 && n >= -128) return 'b';
  if (n >= -0x8000 && n < 0x8000) return 's';
  if (n >= -0x80000000 && n < 0x80000000) return 'I';
  return 'l';
}

const NUMBER_SIZE = { d: 8, b: 1, s: 2, I: 4, l: 8 } as const;

/** Encoded size of a field table of strings, booleans and numbers (with its 4-byte length); -1 for other values. */
export function tableSize(table: Record<string, unknown>): number {
  let size = 4;
  // for...in: amqplib's own publish hands over a table whose entries sit on its prototype.
  for (const key in table) {
    const value = table[key];
    if (value === undefined) continue;
    const keyLen = utf8Length(key);
    if (keyLen > 255) return -1;
    size += 1 + keyLen + 1;
    if (typeof value === 'string') size += 4 + utf8Length(value);
    else if (typeof value === 'boolean') size += 1;
    else if (typeof value === 'number') {
      const tag = numberTag(value);
      if (tag === undefined) return -1;
      size += NUMBER_SIZE[tag];
    } else return -1;
  }
  return size;
}

export function writeTable(out: Buffer, o: number, table: Record<string, unknown>, size: number): number {
  o = writeUInt32(out, o, size - 4);
  for (const key in table) {
    const value = table[key];
    if (value === undefined) continue;
    const keyLen = utf8Length(key);
    out[o] = keyLen;
    writeUtf8(out, o + 1, key, keyLen);
    o += 1 + keyLen;
    if (typeof value === 'string') {
      out[o] = 0x53; // 'S'
      const len = utf8Length(value);
      writeUInt32(out, o + 1, len);
      writeUtf8(out, o + 5, value, len);
      o += 5 + len;
    } else if (typeof value === 'boolean') {
      out[o] = 0x74; // 't'
      out[o + 1] = value ? 1 : 0;
      o += 2;
    } else {
      const n = value as number;
      const tag = numberTag(n)!;
      out[o] = tag.charCodeAt(0);
      o += 1;
      if (tag === 'd') o = out.writeDoubleBE(n, o);
      else if (tag === 'b') o = out.writeInt8(n, o);
      else if (tag === 's') o = out.writeInt16BE(n, o);
      else if (tag === 'I') o = out.writeInt32BE(n, o);
      else o = out.writeBigInt64BE(BigInt(n), o);
    }
  }
  return o;
}
