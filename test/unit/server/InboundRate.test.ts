import { expect } from 'chai';
import { InboundFlow, InboundRate, type PausableSocket } from '../../../src/server/connection/InboundRate.ts';

class FakeSocket implements PausableSocket {
  isPaused = false;
  pause(): void {
    this.isPaused = true;
  }
  resume(): void {
    this.isPaused = false;
  }
}

describe('InboundRate and InboundFlow', () => {
  it('lets a burst through, then asks for a pause as long as the bucket needs to refill', () => {
    let now = 0;
    const rate = new InboundRate(1000, 2000, () => now); // 1000 B/s, burst 2000 B
    expect(rate.take(1500)).to.equal(0);
    expect(rate.take(500)).to.equal(0);
    expect(rate.take(500)).to.equal(500); // 500 B owed at 1000 B/s
    now += 500;
    expect(rate.take(0)).to.equal(0);
    now += 10_000; // refills only up to the burst
    expect(rate.take(2000)).to.equal(0);
    expect(rate.take(1)).to.equal(1);
  });

  it('stops reading over the rate and resumes when the pause is over, counting the trip', async () => {
    const ws = new FakeSocket();
    const trips: string[] = [];
    const flow = new InboundFlow(
      ws,
      {
        maxQueuedFrames: 64,
        maxQueuedInboundBytes: 1e9,
        maxInboundBytesPerSecond: 100_000,
        inboundBurstBytes: 1000,
      },
      (limit) => trips.push(limit),
    );
    flow.admit(800)();
    expect(ws.isPaused).to.equal(false);
    flow.admit(1200)(); // 1000 B over: 10 ms at 100 kB/s
    expect(ws.isPaused).to.equal(true);
    expect(trips).to.deep.equal(['inbound_rate']);
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(ws.isPaused).to.equal(false);
    flow.stop();
  });

  it('stops reading while too many frames wait, and resumes at half', () => {
    const ws = new FakeSocket();
    const trips: string[] = [];
    const flow = new InboundFlow(
      ws,
      {
        maxQueuedFrames: 4,
        maxQueuedInboundBytes: 1e9,
        maxInboundBytesPerSecond: 1e9,
        inboundBurstBytes: 1e9,
      },
      (limit) => trips.push(limit),
    );
    const done = Array.from({ length: 5 }, () => flow.admit(1));
    expect(ws.isPaused).to.equal(true);
    expect(trips).to.deep.equal(['inbound_queue']);
    done[0]!();
    done[1]!();
    expect(ws.isPaused).to.equal(true); // 3 waiting: above half of 4
    done[2]!();
    expect(ws.isPaused).to.equal(false);
    flow.stop();
  });
});
