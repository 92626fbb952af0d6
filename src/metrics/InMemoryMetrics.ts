import { LabelCap } from './LabelCap.ts';
import type {
  Counter,
  Gauge,
  Histogram,
  HistogramDefinition,
  Labels,
  MetricDefinition,
  Metrics,
} from './Metrics.ts';

/** One recorded series: a metric name plus one label combination. */
export interface RecordedSeries {
  name: string;
  labels: Labels;
  /** Counter: the sum of increments. Histogram: the number of observations. */
  count: number;
  /** Histogram: the sum of observed values (counter: same as count; gauge: the last value set). */
  sum: number;
}

/**
 * Metrics kept in memory, for tests and diagnostics: every series can be read back with {@link series}. Applies
 * the same label cap as the prom-client adapter.
 */
export class InMemoryMetrics implements Metrics {
  readonly #series = new Map<string, RecordedSeries>();
  readonly #definitions = new Map<string, MetricDefinition>();
  readonly #counters = new Map<string, Counter>();
  readonly #histograms = new Map<string, Histogram>();
  readonly #gauges = new Map<string, Gauge>();
  readonly #maxLabelCombinations: number;

  /** @param maxLabelCombinations cap of label combinations per metric. */
  constructor(maxLabelCombinations = 1000) {
    this.#maxLabelCombinations = maxLabelCombinations;
  }

  counter(definition: MetricDefinition): Counter {
    let counter = this.#counters.get(definition.name);
    if (!counter) {
      const record = this.#recorder(definition);
      counter = { inc: (labels, value = 1) => record(labels, value, value) };
      this.#counters.set(definition.name, counter);
    }
    return counter;
  }

  histogram(definition: HistogramDefinition): Histogram {
    let histogram = this.#histograms.get(definition.name);
    if (!histogram) {
      const record = this.#recorder(definition);
      histogram = { observe: (labels, value) => record(labels, 1, value) };
      this.#histograms.set(definition.name, histogram);
    }
    return histogram;
  }

  /** A gauge's series keeps the last value set in `sum` (and `count` = number of sets). */
  gauge(definition: MetricDefinition): Gauge {
    let gauge = this.#gauges.get(definition.name);
    if (!gauge) {
      const record = this.#recorder(definition, true);
      gauge = { set: (labels, value) => record(labels, 1, value) };
      this.#gauges.set(definition.name, gauge);
    }
    return gauge;
  }

  /** The definitions registered so far, by name. */
  definitions(): ReadonlyMap<string, MetricDefinition> {
    return this.#definitions;
  }

  /** Every recorded series, optionally only those of one metric. */
  series(name?: string): RecordedSeries[] {
    const all = [...this.#series.values()];
    return name === undefined ? all : all.filter((s) => s.name === name);
  }

  /** Sum of `count` over the series of `name` whose labels include `match`. */
  total(name: string, match: Labels = {}): number {
    return this.series(name)
      .filter((s) => Object.entries(match).every(([k, v]) => s.labels[k] === v))
      .reduce((acc, s) => acc + s.count, 0);
  }

  #recorder(
    definition: MetricDefinition,
    replace = false,
  ): (labels: Labels, count: number, sum: number) => void {
    this.#definitions.set(definition.name, definition);
    const cap = new LabelCap(this.#maxLabelCombinations);
    return (labels, count, sum) => {
      const capped = cap.apply(definition.labelNames, labels);
      const picked: Record<string, string> = {};
      for (const n of definition.labelNames) picked[n] = capped[n] ?? '';
      const key = `${definition.name}${JSON.stringify(picked)}`;
      const s = this.#series.get(key);
      if (s) {
        s.count += count;
        s.sum = replace ? sum : s.sum + sum;
      } else this.#series.set(key, { name: definition.name, labels: picked, count, sum });
    };
  }
}
