import type { ConfigIssueKind } from './GatewayConfigError.ts';

/** A field's path in the configuration document: keys and array indexes. */
export type ConfigPath = readonly (string | number)[];

/** A problem at a path, before it is located in its source (file line or environment variable). */
export interface PathIssue {
  readonly path: ConfigPath;
  readonly kind: ConfigIssueKind;
  readonly message: string;
}

/** `endpoints[2].timeoutMs`. */
export function pathText(path: ConfigPath): string {
  let text = '';
  for (const segment of path) {
    text += typeof segment === 'number' ? `[${segment}]` : text.length === 0 ? segment : `.${segment}`;
  }
  return text;
}

/** A plain object (a YAML/JSON mapping), not an array or null. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export interface StringRule {
  required?: boolean;
  /** The whole string must match. */
  pattern?: RegExp;
  /** How the pattern reads in the message, e.g. `an id of [A-Za-z0-9._-], 1 to 200 characters`. */
  describe?: string;
  /** @default 1 */
  minLength?: number;
  /** @default 10000 */
  maxLength?: number;
}

/**
 * Reads typed fields out of an untyped document and collects every problem instead of stopping at the first, so
 * that one run of the validator reports everything wrong with a file. Each reader returns undefined for an absent
 * or invalid value, after recording why.
 */
export class ConfigChecker {
  readonly issues: PathIssue[] = [];

  add(path: ConfigPath, kind: ConfigIssueKind, message: string): void {
    this.issues.push({ path, kind, message });
  }

  /**
   * The mapping at `path`, its unknown keys reported; undefined if absent (reported when required) or not a
   * mapping (reported).
   */
  object(
    value: unknown,
    path: ConfigPath,
    known: readonly string[],
    required = false,
  ): Record<string, unknown> | undefined {
    if (value === undefined || value === null) {
      if (required) this.add(path, 'required', 'required');
      return undefined;
    }
    if (!isRecord(value)) {
      this.add(path, 'type', 'must be a mapping (key: value)');
      return undefined;
    }
    for (const key of Object.keys(value)) {
      if (!known.includes(key)) this.add([...path, key], 'unknown', unknownKeyMessage(key, known));
    }
    return value;
  }

  string(
    obj: Record<string, unknown> | undefined,
    key: string,
    path: ConfigPath,
    rule: StringRule = {},
  ): string | undefined {
    // A missing parent is reported once, at the parent, not again for each of its required fields.
    return this.#string(obj?.[key], [...path, key], obj === undefined ? { ...rule, required: false } : rule);
  }

  #string(value: unknown, at: ConfigPath, rule: StringRule): string | undefined {
    if (value === undefined || value === null) {
      if (rule.required) this.add(at, 'required', 'required');
      return undefined;
    }
    if (typeof value !== 'string') {
      this.add(at, 'type', 'must be a string');
      return undefined;
    }
    const min = rule.minLength ?? 1;
    const max = rule.maxLength ?? 10_000;
    if (value.length < min || value.length > max) {
      this.add(at, 'range', value.length === 0 ? 'must not be empty' : `must be ${min} to ${max} characters`);
      return undefined;
    }
    if (rule.pattern && !rule.pattern.test(value)) {
      this.add(at, 'format', `must be ${rule.describe ?? `a string matching ${String(rule.pattern)}`}`);
      return undefined;
    }
    return value;
  }

  integer(
    obj: Record<string, unknown> | undefined,
    key: string,
    path: ConfigPath,
    min: number,
    max: number = Number.MAX_SAFE_INTEGER,
    required = false,
  ): number | undefined {
    const value = obj?.[key];
    const at = [...path, key];
    if (value === undefined || value === null) {
      if (required && obj !== undefined) this.add(at, 'required', 'required');
      return undefined;
    }
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `${min}..${max}`;
      this.add(at, typeof value === 'number' ? 'range' : 'type', `must be an integer ${range}`);
      return undefined;
    }
    return value;
  }

  boolean(obj: Record<string, unknown> | undefined, key: string, path: ConfigPath): boolean | undefined {
    const value = obj?.[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'boolean') {
      this.add([...path, key], 'type', 'must be true or false');
      return undefined;
    }
    return value;
  }

  oneOf<T extends string>(
    obj: Record<string, unknown> | undefined,
    key: string,
    path: ConfigPath,
    values: readonly T[],
    required = false,
  ): T | undefined {
    const value = obj?.[key];
    const at = [...path, key];
    if (value === undefined || value === null) {
      if (required && obj !== undefined) this.add(at, 'required', `required: one of ${values.join(', ')}`);
      return undefined;
    }
    if (typeof value !== 'string' || !(values as readonly string[]).includes(value)) {
      this.add(at, 'enum', `must be one of ${values.join(', ')}`);
      return undefined;
    }
    return value as T;
  }

  /** The sequence at `obj[key]`; undefined if absent or not a sequence (reported). */
  array(obj: Record<string, unknown> | undefined, key: string, path: ConfigPath): unknown[] | undefined {
    const value = obj?.[key];
    if (value === undefined || value === null) return undefined;
    if (!Array.isArray(value)) {
      this.add([...path, key], 'type', 'must be a list');
      return undefined;
    }
    return value as unknown[];
  }

  /**
   * A list of strings, each checked by `rule`; a single string is taken as a one-element list when `single` is
   * set (`issuer: https://idp` as well as `issuer: [a, b]`). Invalid elements are reported and left out.
   */
  stringList(
    obj: Record<string, unknown> | undefined,
    key: string,
    path: ConfigPath,
    rule: StringRule & { single?: boolean; nonEmpty?: boolean } = {},
  ): string[] | undefined {
    const value = obj?.[key];
    const at = [...path, key];
    if (rule.single && typeof value === 'string') {
      const one = this.#string(value, at, rule);
      return one === undefined ? undefined : [one];
    }
    if (value === undefined || value === null) {
      if (rule.required) this.add(at, 'required', 'required');
      return undefined;
    }
    const list = this.array(obj, key, path);
    if (list === undefined) return undefined;
    if (rule.nonEmpty && list.length === 0) this.add(at, 'range', 'must not be empty');
    const out: string[] = [];
    list.forEach((element, i) => {
      const s = this.#string(element, [...at, i], { ...rule, required: true });
      if (s !== undefined) out.push(s);
    });
    return out;
  }
}

function unknownKeyMessage(key: string, known: readonly string[]): string {
  const near = known.find((k) => k.toLowerCase() === key.toLowerCase() || editDistance(k, key) <= 2);
  return near ? `unknown field (did you mean '${near}'?)` : `unknown field (known: ${known.join(', ')})`;
}

/** Levenshtein distance, for "did you mean" hints on short field names. */
function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(above + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}
