import { expect } from 'chai';
import { InFlightLimiter } from '../../../src/server/inbound/InFlightLimiter.ts';

describe('InFlightLimiter', () => {
  it('admits at once up to max, then makes callers wait in arrival order', async () => {
    const limiter = new InFlightLimiter(2);
    expect(limiter.acquire()).to.equal(undefined);
    expect(limiter.acquire()).to.equal(undefined);
    const order: string[] = [];
    const a = limiter.acquire()!.then(() => order.push('a'));
    const b = limiter.acquire()!.then(() => order.push('b'));
    limiter.release();
    await a;
    expect(order).to.deep.equal(['a']);
    limiter.release();
    await b;
    expect(order).to.deep.equal(['a', 'b']);
    expect(limiter.used).to.equal(2);
  });

  it('does not let a small request pass a larger one waiting before it', async () => {
    const limiter = new InFlightLimiter(10);
    expect(limiter.acquire(8)).to.equal(undefined);
    const big = limiter.acquire(5);
    expect(big).to.be.instanceOf(Promise);
    expect(limiter.acquire(1)).to.be.instanceOf(Promise);
    limiter.release(8);
    await big;
    expect(limiter.used).to.equal(6);
  });

  it('cuts a request larger than the capacity to it, so it runs alone', async () => {
    const limiter = new InFlightLimiter(3);
    expect(limiter.acquire(100)).to.equal(undefined);
    expect(limiter.used).to.equal(3);
    const next = limiter.acquire(1)!;
    limiter.release(100);
    await next;
    expect(limiter.used).to.equal(1);
  });
});
