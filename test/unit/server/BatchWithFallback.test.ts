import { expect } from 'chai';
import {
  BatchWithFallback,
  type BatchWithFallbackOptions,
} from '../../../src/server/messaging/BatchWithFallback.ts';
import type { TransactionScript } from '../../../src/store/TransactionScript.ts';

/** A store whose transactions record their operation name and commit what `commitInTrx` wrote, unless it threw. */
function fakeStore(): { store: BatchWithFallbackOptions<number, string>['store']; operations: string[] } {
  const operations: string[] = [];
  return {
    operations,
    store: {
      script: <T>(fn: (tx: TransactionScript) => Promise<T>, operation?: string): Promise<T> => {
        operations.push(operation ?? 'transaction');
        return fn({} as TransactionScript);
      },
    },
  };
}

/** Commits items as `ok <n>`; an item listed in `bad` fails the transaction it is in. */
function committer(
  bad: readonly number[],
  onItemFailure?: BatchWithFallbackOptions<number, string>['onItemFailure'],
): { batches: BatchWithFallback<number, string>; operations: string[]; committed: number[][] } {
  const { store, operations } = fakeStore();
  const committed: number[][] = [];
  const batches = new BatchWithFallback<number, string>({
    store,
    commitInTrx: (items) => {
      if (items.some((i) => bad.includes(i))) return Promise.reject(new Error('bad item'));
      committed.push(items);
      return Promise.resolve(items.map((i) => `ok ${i}`));
    },
    operations: { batch: 'batch', single: 'single' },
    ...(onItemFailure ? { onItemFailure } : {}),
  });
  return { batches, operations, committed };
}

const nackOf = (item: number, err: unknown): Promise<string> =>
  Promise.resolve(`failed ${item}: ${(err as Error).message}`);

describe('BatchWithFallback', () => {
  it('commits a batch in one transaction', async () => {
    const { batches, operations, committed } = committer([], nackOf);
    expect(await batches.commit([1, 2, 3])).to.deep.equal(['ok 1', 'ok 2', 'ok 3']);
    expect(operations).to.deep.equal(['batch']);
    expect(committed).to.deep.equal([[1, 2, 3]]);
  });

  it('commits each item of a failed batch in its own transaction, so one bad item fails only itself', async () => {
    const { batches, operations, committed } = committer([2], nackOf);
    expect(await batches.commit([1, 2, 3])).to.deep.equal(['ok 1', 'failed 2: bad item', 'ok 3']);
    expect(operations).to.deep.equal(['batch', 'single', 'single', 'single']);
    expect(committed).to.deep.equal([[1], [3]]);
  });

  it('does not commit a failed batch of one again', async () => {
    const { batches, operations } = committer([1], nackOf);
    expect(await batches.commit([1])).to.deep.equal(['failed 1: bad item']);
    expect(operations).to.deep.equal(['batch']);
  });

  it('without onItemFailure, an item that fails alone rejects the batch', async () => {
    const { batches, operations } = committer([2]);
    let rejected: unknown;
    await batches.commit([1, 2, 3]).catch((err: unknown) => (rejected = err));
    expect(rejected).to.be.instanceOf(Error).with.property('message', 'bad item');
    expect(operations).to.deep.equal(['batch', 'single', 'single']);
  });

  it('optimistic: the first attempt of a batch is optimistic; after it fails, even one item is committed again, not', async () => {
    const { store, operations } = fakeStore();
    const attempts: string[] = [];
    const batches = new BatchWithFallback<number, string>({
      store,
      // Optimistic writes cannot tell a duplicate (item 2) from the others: the whole transaction fails.
      commitInTrx: (items, _trx, optimistic) => {
        attempts.push(`${items.join(',')}${optimistic ? ' optimistic' : ''}`);
        if (optimistic && items.includes(2)) {
          return Promise.reject(new Error('failed', { cause: { code: 'ER_DUP_ENTRY', errno: 1062 } }));
        }
        if (items.includes(9)) return Promise.reject(new Error('database down'));
        return Promise.resolve(items.map((i) => (i === 2 ? `dupe ${i}` : `ok ${i}`)));
      },
      operations: { batch: 'batch', single: 'single' },
      optimistic: true,
    });
    expect(await batches.commit([1, 3])).to.deep.equal(['ok 1', 'ok 3']);
    expect(await batches.commit([1, 2, 3])).to.deep.equal(['ok 1', 'dupe 2', 'ok 3']);
    expect(await batches.commit([2])).to.deep.equal(['dupe 2']);
    expect(attempts).to.deep.equal([
      '1,3 optimistic',
      '1,2,3 optimistic',
      '1',
      '2',
      '3',
      '2 optimistic',
      '2',
    ]);
    expect(operations).to.deep.equal(['batch', 'batch', 'single', 'single', 'single', 'batch', 'single']);
    // Any other failure of a batch of one is its own: not committed again (an outage would only take longer).
    let rejected: unknown;
    await batches.commit([9]).catch((err: unknown) => (rejected = err));
    expect(rejected).to.be.instanceOf(Error).with.property('message', 'database down');
    expect(attempts.at(-1)).to.equal('9 optimistic');
  });

  it('optimistic: a write guard’s failure (a session closed meanwhile) also has a batch of one committed again', async () => {
    const { store } = fakeStore();
    const attempts: string[] = [];
    const batches = new BatchWithFallback<number, string>({
      store,
      commitInTrx: (items, _trx, optimistic) => {
        attempts.push(`${items.join(',')}${optimistic ? ' optimistic' : ''}`);
        if (optimistic) return Promise.reject(new Error('failed', { cause: { errno: 1242 } }));
        return Promise.resolve(items.map((i) => `gone ${i}`));
      },
      operations: { batch: 'batch', single: 'single' },
      optimistic: true,
    });
    expect(await batches.commit([7])).to.deep.equal(['gone 7']);
    expect(attempts).to.deep.equal(['7 optimistic', '7']);
  });

  it('results given after the commit are read once the transaction has committed', async () => {
    const events: string[] = [];
    const batches = new BatchWithFallback<number, string>({
      store: {
        script: async <T>(fn: (tx: TransactionScript) => Promise<T>): Promise<T> => {
          const out = await fn({} as TransactionScript);
          events.push('committed');
          return out;
        },
      },
      commitInTrx: (items) =>
        Promise.resolve(() => {
          events.push('results read');
          return Promise.resolve(items.map((i) => `ok ${i}`));
        }),
      operations: { batch: 'batch', single: 'single' },
      optimistic: true,
    });
    expect(await batches.commit([1, 2])).to.deep.equal(['ok 1', 'ok 2']);
    expect(await batches.commitAlone(3)).to.equal('ok 3');
    expect(events).to.deep.equal(['committed', 'results read', 'committed', 'results read']);
  });

  it('commitAlone commits one item in its own transaction', async () => {
    const { batches, operations } = committer([5], nackOf);
    expect(await batches.commitAlone(4)).to.equal('ok 4');
    expect(await batches.commitAlone(5)).to.equal('failed 5: bad item');
    expect(operations).to.deep.equal(['single', 'single']);
  });
});
