import { expect } from 'chai';
import { backoffDelay } from '../../../src/util/backoff.ts';
import { chunk } from '../../../src/util/chunk.ts';
import { randomId } from '../../../src/util/ids.ts';

describe('backoffDelay()', () => {
  it('grows exponentially from the initial delay up to the maximum', () => {
    const mid = () => 0.5; // no jitter
    expect([0, 1, 2, 3, 10].map((a) => backoffDelay(a, {}, mid))).to.deep.equal([
      500, 1000, 2000, 4000, 30_000,
    ]);
  });

  it('spreads the delay by at most the jitter fraction', () => {
    expect(backoffDelay(1, { jitter: 0.2 }, () => 0)).to.equal(800);
    expect(backoffDelay(1, { jitter: 0.2 }, () => 1)).to.equal(1200);
  });
});

describe('chunk()', () => {
  it('splits into chunks of at most the given size', () => {
    expect(chunk([1, 2, 3, 4, 5], 2)).to.deep.equal([[1, 2], [3, 4], [5]]);
    expect(chunk([], 500)).to.deep.equal([]);
  });

  it('rejects a size below 1', () => {
    expect(() => chunk([1], 0)).to.throw(RangeError);
  });
});

describe('randomId()', () => {
  it('makes alphanumeric ids of the given length', () => {
    const id = randomId(16);
    expect(id).to.match(/^[A-Za-z0-9]{16}$/);
    expect(randomId(16)).to.not.equal(id);
  });
});
