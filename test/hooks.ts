import { randomBytes } from 'node:crypto';

/**
 * Root hooks. Every test run gets a run id; tests derive their database names, queue prefixes and node names from
 * it so concurrent or leftover runs never see each other's state.
 */
export const runId: string = process.env.TEST_RUN_ID ?? randomBytes(4).toString('hex');

let failures = 0;
const kept: string[] = [];

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

export const mochaHooks = {
  beforeAll(): void {
    console.log(`test run id: ${runId}${process.env.CI === 'true' ? ' (CI: services are required)' : ''}`);
  },
  afterEach(this: Mocha.Context): void {
    if (this.currentTest?.state === 'failed') failures++;
  },
  afterAll(): void {
    if (kept.length > 0)
      console.log(`test run ${runId}: kept for inspection (a test failed while in use): ${kept.join(', ')}`);
  },
};
