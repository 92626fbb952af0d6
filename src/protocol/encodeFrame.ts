import type { C2SEnvelope, S2CEnvelope } from './envelopes.ts';

/**
 * A JSON text to embed as it is, for example a `msg` read from the store: section 2.3 says stored answers and
 * outbox rows keep their JSON text unchanged. The text is trusted to be valid JSON; it is not re-parsed.
 */
export class RawJson {
  readonly json: string;

  constructor(json: string) {
    this.json = json;
  }
}

/** An envelope of either direction, whose `msg` may be a {@link RawJson}. */
export type EncodableEnvelope = (C2SEnvelope | S2CEnvelope | { t: string }) & { msg?: unknown };

/** `undefined` for values JSON cannot represent (functions, symbols), which are then left out like absent ones. */
function encodeValue(value: unknown): string | undefined {
  if (value instanceof RawJson) return value.json;
  const json: string | undefined = JSON.stringify(value);
  return json;
}

/** Only the envelope's own fields and the `debug` object's fields are pruned; `msg` content is left alone. */
function encodeObject(object: object, nested: boolean): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(object)) {
    if (value === undefined || value === null) continue;
    const encoded =
      !nested &&
      key === 'debug' &&
      typeof value === 'object' &&
      !(value instanceof RawJson) &&
      !Array.isArray(value)
        ? encodeObject(value as object, true)
        : encodeValue(value);
    if (encoded === undefined) continue;
    parts.push(`${JSON.stringify(key)}:${encoded}`);
  }
  return `{${parts.join(',')}}`;
}

/**
 * Encodes envelopes as one text frame: a JSON array, even for one envelope (section 2.2). Fields whose value is
 * `undefined` or `null` are omitted, at the envelope level and inside `debug` (section 2.3: "omit absent
 * values"); `null`s inside `msg` are kept, and a `msg` of `null` means "no message" and is omitted too.
 */
export function encodeFrame(envelopes: readonly EncodableEnvelope[]): string {
  return `[${envelopes.map((envelope) => encodeObject(envelope, false)).join(',')}]`;
}
