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
  type Labels,
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
  const instruments = new Map<string, unknown>();

  /**
   * The instrument named `definition.name`: created on first use (reusing a prom-client metric of that name already
   * in the registry, e.g. from a second factory in the same process), with its own label cap.
   */
  function instrument<P, I>(
    definition: MetricDefinition,
    PromClass: new (config: never) => P,
    config: Record<string, unknown>,
    wrap: (prom: P, cap: (labels: Labels) => Labels) => I,
  ): I {
    const known = instruments.get(definition.name);
    if (known) return known as I;
    const existing = registry.getSingleMetric(definition.name);
    const prom =
      existing instanceof PromClass
        ? existing
        : new PromClass({
            name: definition.name,
            help: definition.help,
            labelNames: [...definition.labelNames],
            registers,
            ...config,
          } as never);
    const labelCap = new LabelCap(maxLabelCombinations);
    const created = wrap(prom, (labels) => labelCap.apply(definition.labelNames, labels));
    instruments.set(definition.name, created);
    return created;
  }

  return {
    counter: (definition): Counter =>
      instrument(definition, PromCounter, {}, (prom: PromCounter, cap) => ({
        inc: (labels, value = 1) => prom.inc(cap(labels), value),
      })),
    histogram: (definition: HistogramDefinition): Histogram =>
      instrument(
        definition,
        PromHistogram,
        { buckets: [...(definition.buckets ?? DEFAULT_SECONDS_BUCKETS)] },
        (prom: PromHistogram, cap) => ({ observe: (labels, value) => prom.observe(cap(labels), value) }),
      ),
    gauge: (definition): Gauge =>
      instrument(definition, PromGauge, {}, (prom: PromGauge, cap) => ({
        set: (labels, value) => prom.set(cap(labels), value),
      })),
  };
}
