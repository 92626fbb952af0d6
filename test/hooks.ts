import { randomBytes } from 'node:crypto';

/**
 * Root hooks. Every test run gets a run id; tests derive their database names, queue prefixes and node names from
 * it so concurrent or leftover runs never see each other's state.
 */
export const runId: string = process.env.TEST_RUN_ID ?? randomBytes(4).toString('hex');

let failures = 0;

/** True when every test so far passed: per-run databases are dropped only then (kept for inspection otherwise). */
export function allPassedSoFar(): boolean {
  return failures === 0 && process.env.KEEP_TEST_DB !== '1';
}

export const mochaHooks = {
  beforeAll(): void {
    console.log(`test run id: ${runId}${process.env.CI === 'true' ? ' (CI: services are required)' : ''}`);
  },
  afterEach(this: Mocha.Context): void {
    if (this.currentTest?.state === 'failed') failures++;
  },
};
