/** Milliseconds from a monotonic clock where there is one (`performance.now()`), else `Date.now()`. */
export function monotonicNow(): number {
  const performance = (globalThis as { performance?: { now(): number } }).performance;
  return performance ? performance.now() : Date.now();
}

/** Rounds a duration to hundredths of a millisecond. */
export function roundMs(ms: number): number {
  return Math.round(ms * 100) / 100;
}
