import { expect } from 'chai';
import { GroupCommitter } from '../../../src/server/messaging/GroupCommitter.ts';

describe('GroupCommitter', () => {
  it('commits items submitted within the window in one batch, results in order', async () => {
    const batches: number[][] = [];
    const gc = new GroupCommitter<number, number>({
      windowMs: 5,
      maxItems: 100,
      commit: (items) => {
        batches.push(items);
        return Promise.resolve(items.map((i) => i * 10));
      },
    });
    const results = await Promise.all([1, 2, 3].map((i) => gc.submit(i)));
    expect(results).to.deep.equal([10, 20, 30]);
    expect(batches).to.deep.equal([[1, 2, 3]]);
  });

  it('splits at maxItems and grows batches while commits are running', async () => {
    const batches: number[][] = [];
    let release: (() => void) | undefined;
    const gate = new Promise<void>((r) => (release = r));
    const gc = new GroupCommitter<number, number>({
      windowMs: 1,
      maxItems: 3,
      concurrency: 1,
      commit: async (items) => {
        batches.push(items);
        if (batches.length === 1) await gate;
        return items;
      },
    });
    const first = [1, 2, 3].map((i) => gc.submit(i));
    const later = [4, 5, 6, 7].map((i) => gc.submit(i));
    release!();
    await Promise.all([...first, ...later]);
    expect(batches[0]).to.deep.equal([1, 2, 3]);
    expect(batches.slice(1).flat()).to.deep.equal([4, 5, 6, 7]);
    expect(batches.every((b) => b.length <= 3)).to.equal(true);
  });

  it('commits at once while idle; items arriving during a commit go when it ends, not at the window', async () => {
    const batches: number[][] = [];
    let release: (() => void) | undefined;
    const gate = new Promise<void>((r) => (release = r));
    const gc = new GroupCommitter<number, number>({
      // Far longer than the test's timeout: nothing here may wait for it.
      windowMs: 60_000,
      maxItems: 100,
      commit: async (items) => {
        batches.push(items);
        if (batches.length === 1) await gate;
        return items;
      },
    });
    const first = gc.submit(1);
    await new Promise((r) => setImmediate(r));
    expect(batches).to.deep.equal([[1]]);
    const later = [gc.submit(2), gc.submit(3)];
    await new Promise((r) => setImmediate(r));
    expect(batches, 'a batch is committing: the next one gathers').to.deep.equal([[1]]);
    release!();
    expect(await Promise.all([first, ...later])).to.deep.equal([1, 2, 3]);
    expect(batches).to.deep.equal([[1], [2, 3]]);
  });

  it('with eagerWhenIdle off, a lone item waits for the window', async () => {
    const batches: number[][] = [];
    const gc = new GroupCommitter<number, number>({
      windowMs: 30,
      maxItems: 100,
      eagerWhenIdle: false,
      commit: (items) => {
        batches.push(items);
        return Promise.resolve(items);
      },
    });
    const one = gc.submit(1);
    await new Promise((r) => setImmediate(r));
    expect(batches).to.deep.equal([]);
    expect(await one).to.equal(1);
  });

  it('rejects every item of a failed batch', async () => {
    const gc = new GroupCommitter<number, number>({
      windowMs: 2,
      maxItems: 10,
      commit: () => Promise.reject(new Error('db down')),
    });
    const results = await Promise.allSettled([gc.submit(1), gc.submit(2)]);
    expect(results.map((r) => r.status)).to.deep.equal(['rejected', 'rejected']);
    await gc.idle();
  });

  it('flushIfIdle commits the gathered items before the window ends, but not while a batch is committing', async () => {
    const batches: number[][] = [];
    let release: (() => void) | undefined;
    const gc = new GroupCommitter<number, number>({
      // Far longer than the test's timeout: a batch committed in time was flushed early.
      windowMs: 60_000,
      maxItems: 100,
      concurrency: 1,
      commit: async (items) => {
        batches.push(items);
        if (batches.length === 1) await new Promise<void>((r) => (release = r));
        return items;
      },
    });
    const first = gc.submit(1);
    gc.flushIfIdle();
    expect(batches).to.deep.equal([[1]]);
    const second = gc.submit(2);
    gc.flushIfIdle();
    // The first batch is still committing: the second keeps gathering.
    expect(batches).to.deep.equal([[1]]);
    release!();
    await first;
    // Once the first batch has ended (its bookkeeping runs after its items resolve), nothing is committing and the
    // window of the second is still open: flushIfIdle commits it now.
    await new Promise((r) => setImmediate(r));
    gc.flushIfIdle();
    expect(await second).to.equal(2);
    expect(batches).to.deep.equal([[1], [2]]);
  });
});
