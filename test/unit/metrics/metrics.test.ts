import { expect } from 'chai';
import { Registry } from 'prom-client';
import { InMemoryMetrics } from '../../../src/metrics/InMemoryMetrics.ts';
import { LabelCap, OVERFLOW_LABEL_VALUE } from '../../../src/metrics/LabelCap.ts';
import { noopMetrics } from '../../../src/metrics/Metrics.ts';
import { promMetrics } from '../../../src/metrics/promMetrics.ts';

describe('metrics', () => {
  it('LabelCap folds new combinations over the cap into _other, keeps seen ones', () => {
    const cap = new LabelCap(2);
    expect(cap.apply(['stage'], { stage: 'a' })).to.deep.equal({ stage: 'a' });
    expect(cap.apply(['stage'], { stage: 'b' })).to.deep.equal({ stage: 'b' });
    expect(cap.apply(['stage'], { stage: 'c' })).to.deep.equal({ stage: OVERFLOW_LABEL_VALUE });
    expect(cap.apply(['stage'], { stage: 'a' })).to.deep.equal({ stage: 'a' });
    expect(cap.overflowed).to.equal(true);
    expect(() => new LabelCap(0)).to.throw(RangeError);
  });

  it('noopMetrics accepts everything', () => {
    noopMetrics.counter({ name: 'x', help: 'x', labelNames: [] }).inc({});
    noopMetrics.histogram({ name: 'y', help: 'y', labelNames: [] }).observe({}, 1);
    noopMetrics.gauge({ name: 'z', help: 'z', labelNames: [] }).set({}, 1);
  });

  it('gauges keep the last value set, in memory and in prom-client', async () => {
    const m = new InMemoryMetrics();
    const g = m.gauge({ name: 'live', help: 'h', labelNames: ['node'] });
    g.set({ node: 'a' }, 5);
    g.set({ node: 'a' }, 2);
    expect(m.series('live')[0]).to.include({ sum: 2 });
    const registry = new Registry();
    const p = promMetrics({ registry });
    p.gauge({ name: 'matssocket_test_live', help: 'h', labelNames: ['node'] }).set({ node: 'a' }, 7);
    p.gauge({ name: 'matssocket_test_live', help: 'h', labelNames: ['node'] }).set({ node: 'a' }, 3);
    expect(await registry.metrics()).to.contain('matssocket_test_live{node="a"} 3');
  });

  it('InMemoryMetrics records series and totals with the cap', () => {
    const m = new InMemoryMetrics(2);
    const c = m.counter({ name: 'c_total', help: 'h', labelNames: ['stage'] });
    c.inc({ stage: 'a' });
    c.inc({ stage: 'a' }, 2);
    c.inc({ stage: 'b' });
    c.inc({ stage: 'c' });
    expect(m.total('c_total', { stage: 'a' })).to.equal(3);
    expect(m.total('c_total', { stage: OVERFLOW_LABEL_VALUE })).to.equal(1);
    expect(m.counter({ name: 'c_total', help: 'h', labelNames: ['stage'] })).to.equal(c);
    m.histogram({ name: 'h_seconds', help: 'h', labelNames: ['stage'] }).observe({ stage: 'a' }, 0.5);
    expect(m.series('h_seconds')[0]).to.include({ count: 1, sum: 0.5 });
  });

  it('promMetrics registers prom-client metrics, reuses existing ones, and caps label combinations', async () => {
    const registry = new Registry();
    const m = promMetrics({ registry, maxLabelCombinations: 2 });
    const c = m.counter({ name: 'mats_test_total', help: 'h', labelNames: ['stage'] });
    for (const stage of ['a', 'b', 'c', 'd']) c.inc({ stage });
    m.histogram({ name: 'mats_test_seconds', help: 'h', labelNames: ['stage'] }).observe(
      { stage: 'a' },
      0.01,
    );
    const text = await registry.metrics();
    expect(text).to.contain('mats_test_total{stage="a"} 1');
    expect(text).to.contain('mats_test_total{stage="_other"} 2');
    expect(text).to.contain('mats_test_seconds_bucket');
    // A second adapter on the same registry reuses the metric instead of failing on a duplicate name.
    promMetrics({ registry })
      .counter({ name: 'mats_test_total', help: 'h', labelNames: ['stage'] })
      .inc({ stage: 'a' });
    expect(await registry.metrics()).to.contain('mats_test_total{stage="a"} 2');
  });
});
