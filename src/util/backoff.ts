/**
 * Exponential backoff with jitter.
 *
 * With the defaults (initial 500 ms, factor 2, max 30 s, jitter 20 %) the delays are about
 * 0.5, 1, 2, 4, 8, 16, 30, 30, ... seconds, each randomly within ±20 %.
 */
export interface BackoffOptions {
  /** Delay before the first retry, in ms. @default 500 */
  initialMs?: number;
  /** Multiplier per attempt. @default 2 */
  factor?: number;
  /** Upper bound of the delay, in ms. @default 30000 */
  maxMs?: number;
  /** Random spread, as a fraction of the delay (0.2 = ±20 %). @default 0.2 */
  jitter?: number;
}

/** Delay in ms before retry number `attempt` (0-based). */
export function backoffDelay(attempt: number, options: BackoffOptions = {}, random = Math.random): number {
  const { initialMs = 500, factor = 2, maxMs = 30_000, jitter = 0.2 } = options;
  const base = Math.min(maxMs, initialMs * Math.pow(factor, Math.max(0, attempt)));
  const spread = base * jitter * (random() * 2 - 1);
  return Math.max(0, Math.round(base + spread));
}
