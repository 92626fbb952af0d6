import { expect } from 'chai';
import { Registry } from 'prom-client';
import { ConfigError } from '../../../src/errors.ts';
import { promMetrics } from '../../../src/metrics/promMetrics.ts';
import { MetricsHistory, type MetricsSample } from '../../../src/ops/MetricsHistory.ts';
import { ServerMetrics } from '../../../src/server/ServerMetrics.ts';

/** A registry the server's own instruments write to, as on a node; and a clock the test moves. */
function node(name = 'n1'): { registry: Registry; metrics: ServerMetrics; clock: { t: number } } {
  const registry = new Registry();
  return { registry, metrics: new ServerMetrics(promMetrics({ registry }), name), clock: { t: 1_000_000 } };
}

describe('MetricsHistory', () => {
  it('turns counter readings into per-second rates, and counts dead letters per interval', async () => {
    const { registry, metrics, clock } = node();
    const history = new MetricsHistory({ source: registry, now: () => clock.t });
    expect(await history.sampleNow()).to.equal(undefined);
    for (let i = 0; i < 10; i++) metrics.messageIn('SEND');
    metrics.messageOut('ACK', 4);
    metrics.deadLettered('client_nack', 3);
    clock.t += 2000;
    const sample = await history.sampleNow();
    expect(sample).to.deep.include({ t: clock.t, messagesIn: 5, messagesOut: 2, deadLettered: 3 });
    clock.t += 1000;
    expect(await history.sampleNow()).to.deep.include({ messagesIn: 0, messagesOut: 0, deadLettered: 0 });
  });

  it('reports the mean and the 95th percentile bucket of the round trips of each interval, null when none', async () => {
    const { registry, metrics, clock } = node();
    const history = new MetricsHistory({ source: registry, now: () => clock.t });
    metrics.requestRoundTrip(5); // before the baseline: not in the first sample
    await history.sampleNow();
    for (let i = 0; i < 19; i++) metrics.requestRoundTrip(0.002);
    metrics.requestRoundTrip(0.2);
    clock.t += 1000;
    const sample = await history.sampleNow();
    expect(sample!.roundTripMeanMs).to.be.closeTo((19 * 2 + 200) / 20, 1e-9);
    // 19 of 20 (95 %) are within the 2.5 ms bucket.
    expect(sample!.roundTripP95Ms).to.equal(2.5);
    metrics.requestRoundTrip(100); // beyond the largest bucket (30 s)
    clock.t += 1000;
    expect(await history.sampleNow()).to.deep.include({ roundTripMeanMs: 100_000, roundTripP95Ms: 30_000 });
    clock.t += 1000;
    expect(await history.sampleNow()).to.deep.include({ roundTripMeanMs: null, roundTripP95Ms: null });
  });

  it('takes gauges as they are, null while a metric does not exist yet', async () => {
    const { registry, metrics, clock } = node();
    const history = new MetricsHistory({ source: registry, now: () => clock.t });
    await history.sampleNow();
    clock.t += 1000;
    expect(await history.sampleNow()).to.deep.include({
      outboxDepth: null,
      liveSessions: null,
      messagesIn: 0,
    });
    metrics.outboxDepth(7);
    metrics.sessionEstablished('NEW', 3);
    clock.t += 1000;
    expect(await history.sampleNow()).to.deep.include({ outboxDepth: 7, liveSessions: 3 });
  });

  it('reads only the series of its node when several nodes share the registry', async () => {
    const registry = new Registry();
    const a = new ServerMetrics(promMetrics({ registry }), 'a');
    const b = new ServerMetrics(promMetrics({ registry }), 'b');
    let t = 0;
    const history = new MetricsHistory({ source: registry, nodeName: 'a', now: () => t });
    await history.sampleNow();
    a.messageIn('SEND');
    b.messageIn('SEND');
    b.messageIn('SEND');
    b.outboxDepth(9);
    t += 1000;
    expect(await history.sampleNow()).to.deep.include({ messagesIn: 1, outboxDepth: null });
  });

  it('after a registry reset, counts from zero instead of a negative rate', async () => {
    const { registry, metrics, clock } = node();
    const history = new MetricsHistory({ source: registry, now: () => clock.t });
    for (let i = 0; i < 5; i++) metrics.messageIn('SEND');
    await history.sampleNow();
    registry.resetMetrics();
    metrics.messageIn('SEND');
    clock.t += 1000;
    expect(await history.sampleNow()).to.deep.include({ messagesIn: 1 });
  });

  it('keeps the last windowMs / intervalMs samples, oldest first, and returns those after a time', async () => {
    const { registry, clock } = node();
    const history = new MetricsHistory({
      source: registry,
      intervalMs: 1000,
      windowMs: 3000,
      now: () => clock.t,
    });
    expect(history.capacity).to.equal(3);
    await history.sampleNow();
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      clock.t += 1000;
      times.push((await history.sampleNow())!.t);
    }
    expect(history.samples().map((s) => s.t)).to.deep.equal(times.slice(2));
    expect(history.samples(times[3]).map((s) => s.t)).to.deep.equal([times[4]]);
    expect(history.samples(times[4])).to.deep.equal([]);
  });

  it('skips an interval whose read fails, and keeps sampling', async () => {
    let fail = true;
    let t = 0;
    const history = new MetricsHistory({
      source: {
        getSingleMetric: () => ({
          get: () => {
            if (fail) throw new Error('registry trouble');
            return { values: [{ value: t, labels: {} }] };
          },
        }),
      },
      now: () => t,
    });
    expect(await history.sampleNow()).to.equal(undefined);
    fail = false;
    t = 1000;
    await history.sampleNow();
    t = 2000;
    expect(await history.sampleNow()).to.deep.include({ messagesIn: 1000, messagesOut: 1000 });
    expect(history.samples()).to.have.length(1);
  });

  it('samples on its timer once started; stop() clears the timer and waits for a sample in progress', async () => {
    const { registry, metrics } = node();
    const seen: MetricsSample[] = [];
    let took: () => void = () => undefined;
    const history = new MetricsHistory({
      source: registry,
      intervalMs: 10,
      onSample: (s) => {
        seen.push(s);
        if (seen.length === 2) took();
      },
    });
    const twoSamples = new Promise<void>((resolve) => (took = resolve));
    history.start();
    history.start();
    expect(history.running).to.equal(true);
    metrics.messageIn('SEND');
    await twoSamples;
    await history.stop();
    await history.stop();
    expect(history.running).to.equal(false);
    expect(history.samples().length).to.be.at.least(2);
  });

  it('validates its options', () => {
    const source = new Registry();
    expect(() => new MetricsHistory({ source, intervalMs: 5 }))
      .to.throw(ConfigError)
      .with.property('field', 'intervalMs');
    expect(() => new MetricsHistory({ source, intervalMs: 1000, windowMs: 999 }))
      .to.throw(ConfigError)
      .with.property('field', 'windowMs');
    expect(() => new MetricsHistory({ source, intervalMs: 10, windowMs: 86_400_000 }))
      .to.throw(ConfigError)
      .with.property('field', 'windowMs');
    expect(new MetricsHistory({ source }).capacity).to.equal(600);
  });
});
