import { expect } from 'chai';
import { BACKEND, buildSchedule, chaosSeed, describeAction } from './chaosSchedule.ts';

const nodes = ['n1', 'n2', 'n3'];

describe('Chaos schedule (seed → timed fault actions)', () => {
  it('the same seed gives the same schedule; another seed another', () => {
    const a = buildSchedule({ seed: 42, durationMs: 60_000, nodes });
    const b = buildSchedule({ seed: 42, durationMs: 60_000, nodes });
    const c = buildSchedule({ seed: 43, durationMs: 60_000, nodes });
    expect(a).to.deep.equal(b);
    expect(a.length).to.be.greaterThan(5);
    expect(c).to.not.deep.equal(a);
  });

  it('the schedule of a seed named in a report stays what that run ran (changing the generator breaks replays)', () => {
    const nodes3 = ['chaos1', 'chaos2', 'chaos3'];
    expect(
      buildSchedule({ seed: 2097474506, durationMs: 35_000, nodes: nodes3 }).map(describeAction),
    ).to.deep.equal([
      't+2.0s rabbitmq-outage (2621 ms)',
      't+6.3s kill-node chaos3 (521 ms)',
      't+8.5s cut-clients (588 ms)',
      't+11.4s mariadb-outage (1602 ms)',
      't+14.6s pause backend (2915 ms)',
      't+19.2s kill-backend backend (435 ms)',
      't+21.7s rabbitmq-outage (1647 ms)',
      't+26.6s mariadb-outage (2805 ms)',
      't+31.9s kill-backend backend (901 ms)',
      't+34.8s pause chaos2 (1424 ms)',
    ]);
  });

  it('actions do not overlap, start within the duration, and hit valid targets', () => {
    for (let seed = 0; seed < 200; seed++) {
      const actions = buildSchedule({ seed, durationMs: 45_000, nodes });
      let freeAt = 0;
      for (const a of actions) {
        expect(a.atMs).to.be.at.least(freeAt);
        expect(a.atMs).to.be.at.most(45_000);
        freeAt = a.atMs + a.durationMs;
        if (a.kind === 'kill-node') expect(nodes).to.include(a.target);
        if (a.kind === 'kill-backend') expect(a.target).to.equal(BACKEND);
        if (a.kind === 'pause') expect([...nodes, BACKEND]).to.include(a.target);
      }
    }
  });

  it('a CI-length run hits every kind of fault', () => {
    for (let seed = 0; seed < 50; seed++) {
      const kinds = new Set(buildSchedule({ seed, durationMs: 40_000, nodes }).map((a) => a.kind));
      expect(kinds.size, `seed ${seed}`).to.equal(6);
    }
  });

  it('CHAOS_SEED replays a seed; a malformed one is refused; none gives a fresh one', () => {
    expect(chaosSeed({ CHAOS_SEED: '12345' })).to.equal(12345);
    expect(() => chaosSeed({ CHAOS_SEED: 'x' })).to.throw(/CHAOS_SEED/);
    expect(chaosSeed({})).to.be.a('number');
  });
});
