import { expect } from 'chai';
import { BACKEND, buildSchedule, chaosSeed, describeAction, SERVICES } from './chaosSchedule.ts';

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
      buildSchedule({ seed: 500761001, durationMs: 35_000, nodes: nodes3 }).map(describeAction),
    ).to.deep.equal([
      't+2.9s mariadb-kill (921 ms)',
      't+6.0s mariadb-restart (990 ms)',
      't+9.9s cut-clients (651 ms)',
      't+12.8s pause chaos3 (2599 ms)',
      't+17.0s kill-backend backend (1444 ms)',
      't+20.8s kill-node chaos2 (1459 ms)',
      't+24.6s cut-service rabbitmq (2593 ms)',
      't+28.2s rabbitmq-kill (1246 ms)',
      't+31.5s rabbitmq-restart (204 ms)',
      't+33.4s mariadb-kill (1253 ms)',
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
        if (a.kind === 'cut-service') expect(SERVICES).to.include(a.target);
      }
    }
  });

  it('a CI-length run hits every kind of fault (graceful and kill -9 restarts of both services included)', () => {
    for (let seed = 0; seed < 200; seed++) {
      const kinds = new Set(buildSchedule({ seed, durationMs: 35_000, nodes }).map((a) => a.kind));
      expect(kinds.size, `seed ${seed}`).to.equal(9);
    }
  });

  it('CHAOS_SEED replays a seed; a malformed one is refused; none gives a fresh one', () => {
    expect(chaosSeed({ CHAOS_SEED: '12345' })).to.equal(12345);
    expect(() => chaosSeed({ CHAOS_SEED: 'x' })).to.throw(/CHAOS_SEED/);
    expect(chaosSeed({})).to.be.a('number');
  });
});
