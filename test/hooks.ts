import { keptForInspection, recordFailure, runId } from '../harness/runState.ts';

/** Mocha root hooks: the run id at the start, failures counted, and what a failed run kept at the end. */
export const mochaHooks = {
  beforeAll(): void {
    console.log(`test run id: ${runId}${process.env.CI === 'true' ? ' (CI: services are required)' : ''}`);
  },
  afterEach(this: Mocha.Context): void {
    if (this.currentTest?.state === 'failed') recordFailure();
  },
  afterAll(): void {
    const kept = keptForInspection();
    if (kept.length > 0)
      console.log(`test run ${runId}: kept for inspection (a test failed while in use): ${kept.join(', ')}`);
  },
};
