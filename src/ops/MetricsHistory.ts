import { ConfigError } from '../errors.ts';
import type { Logger } from '../logging.ts';

/** One series of a metric as prom-client's `metric.get()` reports it. */
export interface MetricSeries {
  value: number;
  labels: Readonly<Record<string, string | number | undefined>>;
  /** Histograms: `<name>_bucket`, `<name>_sum` or `<name>_count`. */
  metricName?: string;
}

/**
 * What the sampler reads: a prom-client `Registry` fits as it is (this module does not import prom-client; the
 * adapter `promMetrics` is the only file that does).
 */
export interface MetricsSource {
  getSingleMetric(
    name: string,
  ):
    { get(): Promise<{ values: readonly MetricSeries[] }> | { values: readonly MetricSeries[] } } | undefined;
}

/** The node's own metrics over one sampling interval (docs/operations.md §4.2). */
export interface MetricsSample {
  /** When it was taken, epoch ms. */
  t: number;
  /** Envelopes received from clients per second (`matssocket_messages_received_total`). */
  messagesIn: number;
  /** Envelopes sent to clients per second (`matssocket_messages_sent_total`). */
  messagesOut: number;
  /** Mean request round trip of the replies written in the interval, ms; null when none was. */
  roundTripMeanMs: number | null;
  /** Their 95th percentile, ms, as the upper bound of its histogram bucket; null when none was. */
  roundTripP95Ms: number | null;
  /** Unattempted outbox messages of the sessions held here (`matssocket_outbox_depth`, refreshed by its job). */
  outboxDepth: number | null;
  /** Messages dead-lettered in the interval (`matssocket_dead_letters_total`). */
  deadLettered: number;
  /** Sessions held by this node (`matssocket_sessions_live`). */
  liveSessions: number | null;
}

/** Options of {@link MetricsHistory}. */
export interface MetricsHistoryOptions {
  /** The registry the node's metrics go to (`promMetrics({ registry })`). */
  source: MetricsSource;
  /** Only series labelled with this `node` (several nodes may share a registry). @default every series */
  nodeName?: string | undefined;
  /** Sampling interval, ms (10 or more). @default 1000 */
  intervalMs?: number | undefined;
  /** How far back samples are kept, ms: the ring buffer holds `windowMs / intervalMs` of them. @default 600000 */
  windowMs?: number | undefined;
  /** Clock, epoch ms. @default Date.now */
  now?: (() => number) | undefined;
  /** A failed read of the registry is logged here (debug), and that interval is skipped. */
  logger?: Logger | undefined;
  /** Called with each recorded sample. */
  onSample?: ((sample: MetricsSample) => void) | undefined;
}

const METRIC = {
  in: 'matssocket_messages_received_total',
  out: 'matssocket_messages_sent_total',
  roundTrip: 'matssocket_request_round_trip_seconds',
  outboxDepth: 'matssocket_outbox_depth',
  deadLetters: 'matssocket_dead_letters_total',
  liveSessions: 'matssocket_sessions_live',
} as const;

/** The raw cumulative readings one sample is the difference of. */
interface Reading {
  t: number;
  in: number;
  out: number;
  deadLetters: number;
  rtSum: number;
  rtCount: number;
  /** Cumulative bucket counts by upper bound (seconds; Infinity for +Inf). */
  rtBuckets: Map<number, number>;
  outboxDepth: number | null;
  liveSessions: number | null;
}

/** The most samples a history may hold (10 minutes at 10 ms, or a day at about 1 s). */
const MAX_CAPACITY = 100_000;

/**
 * Samples the node's own Prometheus metrics every `intervalMs` into a bounded ring buffer (the last `windowMs`), so
 * the admin page can chart them with no external service: messages in/out per second, request round trip, outbox
 * depth, dead letters, live sessions. The caller owns it: `start()` with the node, `stop()` with the node (no timer
 * is left running; the timer never keeps the process alive either).
 */
export class MetricsHistory {
  readonly intervalMs: number;
  readonly capacity: number;
  readonly #source: MetricsSource;
  readonly #nodeName: string | undefined;
  readonly #now: () => number;
  readonly #logger: Logger | undefined;
  readonly #onSample: ((sample: MetricsSample) => void) | undefined;
  readonly #ring: MetricsSample[] = [];
  #next = 0;
  #previous: Reading | undefined;
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<unknown> | undefined;

  /** @throws ConfigError naming an invalid option. */
  constructor(options: MetricsHistoryOptions) {
    const intervalMs = options.intervalMs ?? 1000;
    if (!Number.isSafeInteger(intervalMs) || intervalMs < 10) {
      throw new ConfigError('intervalMs', `must be an integer of at least 10 ms, got ${String(intervalMs)}`);
    }
    const windowMs = options.windowMs ?? 600_000;
    if (!Number.isSafeInteger(windowMs) || windowMs < intervalMs) {
      throw new ConfigError('windowMs', `must be an integer of at least intervalMs, got ${String(windowMs)}`);
    }
    const capacity = Math.ceil(windowMs / intervalMs);
    if (capacity > MAX_CAPACITY) {
      throw new ConfigError('windowMs', `keeps at most ${MAX_CAPACITY} samples (windowMs / intervalMs)`);
    }
    this.intervalMs = intervalMs;
    this.capacity = capacity;
    this.#source = options.source;
    this.#nodeName = options.nodeName;
    this.#now = options.now ?? Date.now;
    this.#logger = options.logger;
    this.#onSample = options.onSample;
  }

  /** Whether the timer runs. */
  get running(): boolean {
    return this.#timer !== undefined;
  }

  /** Starts sampling every `intervalMs` (the first reading is the baseline of the first sample). Idempotent. */
  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => {
      // A slow read (a big registry) skips ticks rather than piling them up.
      if (!this.#inFlight) this.#inFlight = this.sampleNow().finally(() => (this.#inFlight = undefined));
    }, this.intervalMs);
    this.#timer.unref();
  }

  /** Stops the timer and waits for a sample being taken. Idempotent; `start()` may follow. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#inFlight;
  }

  /**
   * Reads the metrics now and records the sample of the time since the previous reading. @returns it, or undefined
   * for the first reading (a baseline) and for a failed read.
   */
  async sampleNow(): Promise<MetricsSample | undefined> {
    let reading: Reading;
    try {
      reading = await this.#read();
    } catch (err) {
      this.#logger?.debug({ err }, 'metrics history: reading the registry failed; interval skipped');
      return undefined;
    }
    const previous = this.#previous;
    this.#previous = reading;
    if (!previous || reading.t <= previous.t) return undefined;
    const sample = difference(previous, reading);
    this.#ring[this.#next] = sample;
    this.#next = (this.#next + 1) % this.capacity;
    this.#onSample?.(sample);
    return sample;
  }

  /** The recorded samples taken after `sinceTs` (all when absent), oldest first. */
  samples(sinceTs?: number): MetricsSample[] {
    const ordered =
      this.#ring.length < this.capacity
        ? this.#ring.slice()
        : [...this.#ring.slice(this.#next), ...this.#ring.slice(0, this.#next)];
    return sinceTs === undefined ? ordered : ordered.filter((s) => s.t > sinceTs);
  }

  async #read(): Promise<Reading> {
    const [inbound, outbound, deadLetters, roundTrip, depth, live] = await Promise.all(
      [
        METRIC.in,
        METRIC.out,
        METRIC.deadLetters,
        METRIC.roundTrip,
        METRIC.outboxDepth,
        METRIC.liveSessions,
      ].map((name) => this.#series(name)),
    );
    const rtBuckets = new Map<number, number>();
    for (const s of roundTrip!) {
      if (s.metricName !== `${METRIC.roundTrip}_bucket`) continue;
      const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
      rtBuckets.set(le, (rtBuckets.get(le) ?? 0) + s.value);
    }
    const of = (series: readonly MetricSeries[], metricName?: string): number =>
      series
        .filter((s) => metricName === undefined || s.metricName === metricName)
        .reduce((a, s) => a + s.value, 0);
    return {
      t: this.#now(),
      in: of(inbound!),
      out: of(outbound!),
      deadLetters: of(deadLetters!),
      rtSum: of(roundTrip!, `${METRIC.roundTrip}_sum`),
      rtCount: of(roundTrip!, `${METRIC.roundTrip}_count`),
      rtBuckets,
      outboxDepth: depth!.length > 0 ? of(depth!) : null,
      liveSessions: live!.length > 0 ? of(live!) : null,
    };
  }

  /** The metric's series of this node; none when the metric does not exist (yet: metrics are created on use). */
  async #series(name: string): Promise<readonly MetricSeries[]> {
    const metric = this.#source.getSingleMetric(name);
    if (!metric) return [];
    const { values } = await metric.get();
    const node = this.#nodeName;
    return node === undefined ? values : values.filter((s) => s.labels.node === node);
  }
}

/** Counters only grow; a smaller value means the registry was reset, and the new value is all since then. */
function delta(before: number, after: number): number {
  return after >= before ? after - before : after;
}

function difference(a: Reading, b: Reading): MetricsSample {
  const seconds = (b.t - a.t) / 1000;
  const count = delta(a.rtCount, b.rtCount);
  const sum = delta(a.rtSum, b.rtSum);
  return {
    t: b.t,
    messagesIn: delta(a.in, b.in) / seconds,
    messagesOut: delta(a.out, b.out) / seconds,
    roundTripMeanMs: count > 0 ? (sum / count) * 1000 : null,
    roundTripP95Ms: count > 0 ? percentileMs(a.rtBuckets, b.rtBuckets, count, 0.95) : null,
    outboxDepth: b.outboxDepth,
    deadLettered: delta(a.deadLetters, b.deadLetters),
    liveSessions: b.liveSessions,
  };
}

/**
 * The upper bound (ms) of the bucket holding the `q` quantile of the observations between two readings of a
 * histogram; past the largest finite bound, that bound (the histogram knows no more).
 */
function percentileMs(
  before: ReadonlyMap<number, number>,
  after: ReadonlyMap<number, number>,
  count: number,
  q: number,
): number | null {
  const bounds = [...after.keys()].sort((x, y) => x - y);
  const finite = bounds.filter((le) => Number.isFinite(le));
  for (const le of bounds) {
    if (delta(before.get(le) ?? 0, after.get(le) ?? 0) >= q * count) {
      const bound = Number.isFinite(le) ? le : finite.at(-1);
      return bound === undefined ? null : bound * 1000;
    }
  }
  return finite.length > 0 ? finite.at(-1)! * 1000 : null;
}
