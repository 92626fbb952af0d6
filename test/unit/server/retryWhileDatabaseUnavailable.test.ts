import { expect } from 'chai';
import { retryWhileDatabaseUnavailable } from '../../../src/server/messaging/retryWhileDatabaseUnavailable.ts';

/** The rejection of `p` (fails the test if it resolves). */
async function rejection(p: Promise<unknown>): Promise<Error> {
  const outcome = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(outcome, 'a rejection').to.be.instanceOf(Error);
  return outcome as Error;
}

const refused = (): Error => Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });

describe('retryWhileDatabaseUnavailable()', () => {
  it('tries again while the database is unreachable, then returns the result', async () => {
    let calls = 0;
    const pauses: number[] = [];
    const result = await retryWhileDatabaseUnavailable(
      () => (++calls < 3 ? Promise.reject(refused()) : Promise.resolve('done')),
      { budgetMs: 10_000, giveUp: () => false, onRetry: (_e, ms) => pauses.push(ms) },
    );
    expect(result).to.equal('done');
    expect(calls).to.equal(3);
    expect(pauses).to.deep.equal([50, 100]);
  });

  it('throws other failures at once', async () => {
    let calls = 0;
    const failure = Object.assign(new Error('Duplicate entry'), { code: 'ER_DUP_ENTRY', errno: 1062 });
    const result = retryWhileDatabaseUnavailable(
      () => {
        calls++;
        return Promise.reject(failure);
      },
      { budgetMs: 10_000, giveUp: () => false },
    );
    expect((await rejection(result)).message).to.equal('Duplicate entry');
    expect(calls).to.equal(1);
  });

  it('gives up when the budget is spent or the caller stops', async () => {
    let calls = 0;
    const always = (): Promise<never> => {
      calls++;
      return Promise.reject(refused());
    };
    const spent = await rejection(
      retryWhileDatabaseUnavailable(always, { budgetMs: 120, giveUp: () => false }),
    );
    expect(spent.message).to.include('ECONNREFUSED');
    expect(calls).to.equal(3); // pauses of 50 and 70 ms fill the budget
    calls = 0;
    const stopped = await rejection(
      retryWhileDatabaseUnavailable(always, { budgetMs: 10_000, giveUp: () => true }),
    );
    expect(stopped.message).to.include('ECONNREFUSED');
    expect(calls).to.equal(1);
  });
});
