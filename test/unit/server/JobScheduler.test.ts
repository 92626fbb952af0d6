import { expect } from 'chai';
import { silentLogger } from '../../../src/logging.ts';
import { JobScheduler } from '../../../src/server/jobs/JobScheduler.ts';
import { LocalSessionRegistry } from '../../../src/server/session/LocalSessionRegistry.ts';
import { parseReplaySmid } from '../../../src/server/topics/TopicSubscriptions.ts';

describe('JobScheduler', () => {
  it('runs jobs repeatedly, never overlapping, and stops', async () => {
    const scheduler = new JobScheduler(silentLogger);
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    scheduler.add('j', 5, async () => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await new Promise((r) => setTimeout(r, 10));
      runs++;
      running--;
    });
    scheduler.start();
    const deadline = Date.now() + 2000;
    while (runs < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    await scheduler.stop();
    const after = runs;
    await new Promise((r) => setTimeout(r, 30));
    expect(after).to.be.at.least(3);
    expect(runs).to.equal(after);
    expect(maxRunning).to.equal(1);
  });

  it('keeps running after a failing job, and runNow joins a run', async () => {
    const scheduler = new JobScheduler(silentLogger);
    let calls = 0;
    scheduler.add('fails', 1000, () => {
      calls++;
      return Promise.reject(new Error('boom'));
    });
    await scheduler.runNow('fails');
    await scheduler.runNow('fails');
    expect(calls).to.equal(2);
    await scheduler.stop();
  });
});

describe('LocalSessionRegistry', () => {
  it('removes an entry only for the connection holding it', () => {
    const registry = new LocalSessionRegistry<{ connectionId: string }>();
    const a = { connectionId: 'a' };
    const b = { connectionId: 'b' };
    expect(registry.set('s', a)).to.equal(undefined);
    expect(registry.set('s', b)).to.equal(a);
    expect(registry.remove('s', a)).to.equal(false);
    expect(registry.get('s')).to.equal(b);
    expect(registry.remove('s', b)).to.equal(true);
    expect(registry.size).to.equal(0);
  });
});

describe('parseReplaySmid', () => {
  it('parses <epoch>.<seq> and rejects anything else', () => {
    expect(parseReplaySmid('k3J9Qa.42')).to.deep.equal({ epoch: 'k3J9Qa', seq: 42 });
    expect(parseReplaySmid('nodot')).to.equal(undefined);
    expect(parseReplaySmid('.5')).to.equal(undefined);
    expect(parseReplaySmid('abc.x')).to.equal(undefined);
    expect(parseReplaySmid('abc.-1')).to.equal(undefined);
  });
});
