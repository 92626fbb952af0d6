/**
 * A small metrics interface the library writes to: counters and histograms with **low-cardinality** labels only
 * (app, stage id, initiator id, outcome — never trace ids, message ids or user ids). The default is
 * {@link noopMetrics}; `promMetrics.ts` adapts it to prom-client. Implementations cap the number of label
 * combinations per metric (see {@link LabelCap}), so a bug that puts an id into a label cannot explode memory.
 */
export interface Metrics {
  /** Returns the counter with this name, creating it on first use. Same name → same instance. */
  counter(definition: MetricDefinition): Counter;
  /** Returns the histogram with this name, creating it on first use. Same name → same instance. */
  histogram(definition: HistogramDefinition): Histogram;
  /** Returns the gauge with this name, creating it on first use. Same name → same instance. */
  gauge(definition: MetricDefinition): Gauge;
}

export type Labels = Readonly<Record<string, string>>;

export interface MetricDefinition {
  /** Prometheus-style name, e.g. `mats_out_messages_total`. */
  name: string;
  help: string;
  /** The label names every observation carries (values given per call). */
  labelNames: readonly string[];
}

export interface HistogramDefinition extends MetricDefinition {
  /** Bucket upper bounds, in the metric's unit (seconds for `_seconds` metrics). @default DEFAULT_SECONDS_BUCKETS */
  buckets?: readonly number[];
}

export interface Counter {
  inc(labels: Labels, value?: number): void;
}

export interface Histogram {
  observe(labels: Labels, value: number): void;
}

/** A value that goes up and down (live sessions, queue depth): the last `set` wins. */
export interface Gauge {
  set(labels: Labels, value: number): void;
}

/** Buckets for durations in seconds: 0.5 ms to 30 s. */
export const DEFAULT_SECONDS_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

const noopCounter: Counter = { inc() {} };
const noopHistogram: Histogram = { observe() {} };
const noopGauge: Gauge = { set() {} };

/** Metrics that record nothing; the default when none are given. */
export const noopMetrics: Metrics = {
  counter: () => noopCounter,
  histogram: () => noopHistogram,
  gauge: () => noopGauge,
};
