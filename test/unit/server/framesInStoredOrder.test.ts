import { expect } from 'chai';
import { framesInStoredOrder } from '../../../src/server/outbound/framesInStoredOrder.ts';

const rows = (spec: string): { item: string; attempted: boolean }[] =>
  spec.split(' ').map((s) => ({ item: s.replace('*', ''), attempted: s.endsWith('*') }));

describe('framesInStoredOrder', () => {
  it('keeps a retried row before fresh rows stored after it', () => {
    expect(framesInStoredOrder(rows('1* 2 3'))).to.deep.equal([['1'], ['2', '3']]);
  });

  it('gives each attempted row its own frame and groups the fresh runs between them', () => {
    expect(framesInStoredOrder(rows('1 2 3* 4* 5 6 7*'))).to.deep.equal([
      ['1', '2'],
      ['3'],
      ['4'],
      ['5', '6'],
      ['7'],
    ]);
  });

  it('puts only fresh rows in one frame, and nothing in no frame', () => {
    expect(framesInStoredOrder(rows('1 2 3'))).to.deep.equal([['1', '2', '3']]);
    expect(framesInStoredOrder([])).to.deep.equal([]);
  });
});
