import { expect } from 'chai';
import { ErrorCode } from '../../../src/errors.ts';
import { OutstandingPublishes } from '../../../src/broker/OutstandingPublishes.ts';

describe('OutstandingPublishes', () => {
  it('settles a publish with its outcome: confirmed, or the error (a non-Error wrapped as the cause)', async () => {
    const o = new OutstandingPublishes(10_000);
    let finish: ((error: unknown) => void) | undefined;
    const confirmed = o.track((done) => (finish = done));
    expect(o.size).to.equal(1);
    finish!(undefined);
    await confirmed;
    const failed = o.track((done) => done('nack'));
    const err = (await failed.catch((e: unknown) => e)) as Error;
    expect(err.message).to.equal('publish failed');
    expect(err.cause).to.equal('nack');
    expect(o.size).to.equal(0);
    o.stopWaiting();
  });

  it('fails a publish whose start throws', async () => {
    const o = new OutstandingPublishes(10_000);
    const boom = new Error('boom');
    const err = await o
      .track(() => {
        throw boom;
      })
      .catch((e: unknown) => e);
    expect(err).to.equal(boom);
    expect(o.size).to.equal(0);
    o.stopWaiting();
  });

  it('fails an unconfirmed publish with TRANSPORT_CONFIRM_TIMEOUT and drops its late outcome', async () => {
    const o = new OutstandingPublishes(20);
    let finish: ((error: unknown) => void) | undefined;
    const err = await o.track((done) => (finish = done)).catch((e: unknown) => e);
    expect(err).to.have.property('code', ErrorCode.TRANSPORT_CONFIRM_TIMEOUT);
    expect(o.size).to.equal(0);
    finish!(undefined); // late confirm: no effect, no throw
    o.stopWaiting(); // idle: the sweep timer is gone, so mocha can exit without --exit
  });

  it('settled() resolves when the last outstanding publish settles, at once when none is', async () => {
    const o = new OutstandingPublishes(10_000);
    await o.settled();
    const finishes: Array<(error: unknown) => void> = [];
    const publishes = [0, 1].map(() => o.track((done) => finishes.push(done)));
    let settled = false;
    const waiting = o.settled().then(() => (settled = true));
    finishes[0]!(undefined);
    await publishes[0];
    expect(settled).to.equal(false);
    finishes[1]!(undefined);
    await Promise.all([publishes[1], waiting]);
    expect(settled).to.equal(true);
    o.stopWaiting();
  });
});
