import {
  Counter as PromCounter,
  Gauge as PromGauge,
  Histogram as PromHistogram,
  register,
  type Registry,
} from 'prom-client';
import { LabelCap } from './LabelCap.ts';
import {
  DEFAULT_SECONDS_BUCKETS,
  type Counter,
  type Gauge,
  type Histogram,
  type HistogramDefinition,
  type MetricDefinition,
  type Metrics,
} from './Metrics.ts';

/** Options of {@link promMetrics}. */
export interface PromMetricsOptions {
  /** The registry to register the metrics in. @default prom-client's global `register` */
  registry?: Registry;
  /** Cap of label combinations per metric; further combinations are folded into `_other`. @default 1000 */
  maxLabelCombinations?: number;
}

/**
 * Adapts {@link Metrics} to prom-client (the only file that imports it). Metrics are created on first use and
 * shared by name; a metric already present in the registry (e.g. from a second factory in the same process) is
 * reused.
 */
export function promMetrics(options: PromMetricsOptions = {}): Metrics {
  const maxLabelCombinations = options.maxLabelCombinations ?? 1000;
  const registry = options.registry ?? register;
  const registers = [registry];
  const counters = new Map<string, Counter>();
  const histograms = new Map<string, Histogram>();
  const gauges = new Map<string, Gauge>();

  return {
    counter(definition: MetricDefinition): Counter {
      let counter = counters.get(definition.name);
      if (counter) return counter;
      const existing = registry.getSingleMetric(definition.name);
      const prom =
        existing instanceof PromCounter
          ? existing
          : new PromCounter({
              name: definition.name,
              help: definition.help,
              labelNames: [...definition.labelNames],
              registers,
            });
      const cap = new LabelCap(maxLabelCombinations);
      counter = { inc: (labels, value = 1) => prom.inc(cap.apply(definition.labelNames, labels), value) };
      counters.set(definition.name, counter);
      return counter;
    },
    histogram(definition: HistogramDefinition): Histogram {
      let histogram = histograms.get(definition.name);
      if (histogram) return histogram;
      const existing = registry.getSingleMetric(definition.name);
      const prom =
        existing instanceof PromHistogram
          ? existing
          : new PromHistogram({
              name: definition.name,
              help: definition.help,
              labelNames: [...definition.labelNames],
              buckets: [...(definition.buckets ?? DEFAULT_SECONDS_BUCKETS)],
              registers,
            });
      const cap = new LabelCap(maxLabelCombinations);
      histogram = {
        observe: (labels, value) => prom.observe(cap.apply(definition.labelNames, labels), value),
      };
      histograms.set(definition.name, histogram);
      return histogram;
    },
    gauge(definition: MetricDefinition): Gauge {
      let gauge = gauges.get(definition.name);
      if (gauge) return gauge;
      const existing = registry.getSingleMetric(definition.name);
      const prom =
        existing instanceof PromGauge
          ? existing
          : new PromGauge({
              name: definition.name,
              help: definition.help,
              labelNames: [...definition.labelNames],
              registers,
            });
      const cap = new LabelCap(maxLabelCombinations);
      gauge = { set: (labels, value) => prom.set(cap.apply(definition.labelNames, labels), value) };
      gauges.set(definition.name, gauge);
      return gauge;
    },
  };
}
