import { expect } from 'chai';
import { BACKEND, buildSchedule, chaosSeed, describeAction, seededRandom } from './chaosSchedule.ts';

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

  it('a pinned seed keeps its schedule (a replay with CHAOS_SEED must run what the failed run ran)', () => {
    expect(seededRandom(1)()).to.equal(seededRandom(1)());
    expect(buildSchedule({ seed: 7, durationMs: 10_000, nodes }).map(describeAction)).to.deep.equal(
      buildSchedule({ seed: 7, durationMs: 10_000, nodes }).map(describeAction),
    );
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
