import { expect } from 'chai';
import { RedeliveryCounter } from '../../../src/broker/RedeliveryCounter.ts';

describe('RedeliveryCounter', () => {
  it('keeps the broker count when there is one, and counts redeliveries per queue and message otherwise', () => {
    const c = new RedeliveryCounter();
    expect(c.count('q', 'm', 0, false)).to.equal(0);
    expect(c.count('q', 'm', 0, true)).to.equal(1);
    expect(c.count('q', 'm', 0, true)).to.equal(2);
    expect(c.count('other', 'm', 0, true)).to.equal(1);
    expect(c.count('q', 'm', 7, true)).to.equal(7);
  });

  it('tracks at most maxEntries messages, forgetting the least recently redelivered', () => {
    const c = new RedeliveryCounter(2);
    c.count('q', 'a', 0, true);
    c.count('q', 'b', 0, true);
    c.count('q', 'a', 0, true); // a is now the most recent
    c.count('q', 'c', 0, true); // evicts b
    expect(c.size).to.equal(2);
    expect(c.count('q', 'a', 0, true)).to.equal(3);
    expect(c.count('q', 'b', 0, true)).to.equal(1);
  });
});
