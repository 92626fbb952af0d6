import { randomBytes } from 'node:crypto';

/**
 * The state of one test or benchmark run, shared by the harness, the tests and the benchmarks. Every run gets a
 * run id; database names, queue prefixes and node names derive from it, so concurrent or leftover runs never see
 * each other's state.
 */
export const runId: string = process.env.TEST_RUN_ID ?? randomBytes(4).toString('hex');

let failures = 0;
const kept: string[] = [];

/** Counts a failed test (the mocha root hook calls it). */
export function recordFailure(): void {
  failures++;
}

/** Tests failed so far in this run: a resource compares it at creation and at clean-up. */
export function failureCount(): number {
  return failures;
}

/**
 * Whether to keep a resource created when `failuresAtCreation` tests had failed: only if a test failed while it was
 * in use (its suite's), or `KEEP_TEST_DB=1`. Kept ones are listed in one line at the end of the run.
 */
export function keepForInspection(what: string, failuresAtCreation: number): boolean {
  const keep = failures > failuresAtCreation || process.env.KEEP_TEST_DB === '1';
  if (keep) kept.push(what);
  return keep;
}

/** What {@link keepForInspection} kept. */
export function keptForInspection(): readonly string[] {
  return kept;
}
