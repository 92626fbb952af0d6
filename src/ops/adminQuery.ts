/** A query string the admin API refuses (400, with this message). */
export class AdminQueryError extends Error {
  readonly code = 'INVALID_QUERY';
}

/** Longest text parameter (a search prefix, a session id cursor), in characters. */
const MAX_TEXT_LENGTH = 256;
/** Largest page of sessions or dead letters. */
export const MAX_ADMIN_PAGE = 200;
/** Page size when `limit` is absent. */
export const DEFAULT_ADMIN_PAGE = 25;

/**
 * The validated query parameters of one admin API GET: only the parameters the route knows, each at most once, as
 * text without control characters or as a bounded integer.
 * @throws AdminQueryError naming the parameter.
 */
export class AdminQuery {
  readonly #params: URLSearchParams;

  constructor(params: URLSearchParams, known: readonly string[]) {
    const seen = new Set<string>();
    for (const name of params.keys()) {
      if (!known.includes(name)) {
        const allowed = known.length > 0 ? `; this route takes ${known.join(', ')}` : '';
        throw new AdminQueryError(`unknown query parameter '${name}'${allowed}`);
      }
      if (seen.has(name)) throw new AdminQueryError(`query parameter '${name}' given twice`);
      seen.add(name);
    }
    this.#params = params;
  }

  /** A text parameter; an empty one counts as absent. */
  text(name: string): string | undefined {
    const value = this.#params.get(name);
    if (value === null || value === '') return undefined;
    if ([...value].length > MAX_TEXT_LENGTH) {
      throw new AdminQueryError(`'${name}' is longer than ${MAX_TEXT_LENGTH} characters`);
    }
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(value))
      throw new AdminQueryError(`'${name}' contains control characters`);
    return value;
  }

  /** An integer parameter in `[min, max]` (decimal digits only). */
  int(name: string, min: number, max: number): number | undefined {
    const value = this.#params.get(name);
    if (value === null || value === '') return undefined;
    const n = /^\d{1,16}$/.test(value) ? Number(value) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new AdminQueryError(`'${name}' must be an integer from ${min} to ${max}`);
    }
    return n;
  }

  /** `limit`: 1 to {@link MAX_ADMIN_PAGE}, default {@link DEFAULT_ADMIN_PAGE}. */
  limit(): number {
    return this.int('limit', 1, MAX_ADMIN_PAGE) ?? DEFAULT_ADMIN_PAGE;
  }
}
