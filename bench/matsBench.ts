/**
 * `npm run bench:mats`: request/reply round trips through a single-stage Mats endpoint on RabbitMQ (persistent,
 * publisher-confirmed, manual acks, quorum queues, no DB), against the same workload done with raw amqplib, in one
 * run and with the same number of messages in flight (`INFLIGHT`).
 *
 * - **raw** (`mats/rawLoop.ts`): the fastest correct loop we know: one connection for publishing and one for
 *   consuming (both `noDelay: true`), confirm channels, persistent messages, manual acks, quorum queues, the write
 *   coalescing the AMQP transport uses (`coalesceWrites.ts`: a tick's frames in one `writev`; `RAW_COALESCE=0`
 *   measures plain amqplib writes, one syscall per frame) and its publish path and frame encoder
 *   (`directPublish.ts`; `RAW_DIRECT=0` publishes through amqplib's `publish()`). The "server"
 *   consumes a request, publishes the reply, waits for its confirm, then acks the request; the "client" consumes
 *   the reply, acks it and publishes the next request (confirmed).
 * - **raw+wire**: the same raw loop, but each message carries what the Mats wire format mandates
 *   (`docs/mats-semantics.md` 4.1: contentType, appId, type, timestamp, the seven `mats_*` headers) and a body of the
 *   envelope's size. It shows how much of the gap is the wire format itself rather than the Mats code.
 * - **mats**: `MatsFactory.single('Bench.echo')` replying to a terminator, driven by a named initiator
 *   (`request` with `replyTo`); the terminator starts the next request. Stage concurrency = `INFLIGHT`.
 *
 * Each round runs the three loops twice when it can: with the CPUs **split** (this process on the first half of
 * the CPUs, the local RabbitMQ on the other half, as in a deployment where the broker has CPUs of its own; see
 * `pipeline/cpuSplit.ts`) and **shared** (both on all CPUs, so the client's CPU is taken from the broker's).
 * `ratio_vs_raw` is the split arrangement's when there is one (else the shared one's), each arrangement's figures
 * are in the JSON under `split` and `shared`. Within an arrangement it is the median of the per-round ratios
 * (mats / raw round trips per second): a noisy neighbour slowing one round does not decide it. The loops and
 * arrangements alternate so that machine noise hits all alike; each round trip's latency is measured from the
 * request's publish to the reply's arrival. Every phase of every loop has fresh queues under a random prefix, deleted after it (also on Ctrl-C). Prints
 * the tables, then (last line) the figures as JSON.
 *
 * Environment: `RABBITMQ_URL` (default amqp://guest:guest@127.0.0.1:5672), `PHASE_MS` (default 3000), `ROUNDS`
 * (default 5), `INFLIGHT` (default 100), `RAW_COALESCE` (default 1), `RAW_DIRECT` (default 1), `CPU_SPLIT`
 * (`both`, default; `0`: shared only).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { AmqpTransport } from '../src/broker/AmqpTransport.ts';
import { MatsFactory } from '../src/mats/MatsFactory.ts';
import { BenchQueues } from './mats/BenchQueues.ts';
import { LoopDriver, meanOf, type PhaseResult, type PhaseTiming } from './mats/LoopDriver.ts';
import { rawPhase, type RawLoopConfig } from './mats/rawLoop.ts';
import { rawQueueNames } from './pipeline/rawAmqp.ts';
import { splitCpus, type CpuSplit } from './pipeline/cpuSplit.ts';

const URL_ = process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const TIMING: PhaseTiming = {
  inFlight: Number(process.env.INFLIGHT ?? 100),
  warmupMs: 1000,
  measureMs: Number(process.env.PHASE_MS ?? 3000),
};
const PREFIX = `bench.${randomBytes(4).toString('hex')}.`;
const PAYLOAD = { number: 3.14, string: 'x'.repeat(100), sleepTime: 0 };
const RAW: RawLoopConfig = {
  url: URL_,
  prefix: PREFIX,
  timing: TIMING,
  payload: PAYLOAD,
  coalesce: process.env.RAW_COALESCE !== '0',
  directPublish: process.env.RAW_DIRECT !== '0',
};
/** `both` (default): every round with the CPUs split and shared; `0`: shared only. */
const CPU_SPLIT = process.env.CPU_SPLIT ?? 'both';

const queues = new BenchQueues(URL_, PREFIX);

/** The queues a Mats phase with queue prefix `prefix` declares. */
function matsQueues(prefix: string): string[] {
  return ['Bench.echo', 'Bench.echo:i', 'Bench.replies', 'Bench.replies:i'].map((q) => `${prefix}${q}`);
}

/**
 * The Mats loop. Each phase has queues of its own, as each raw phase has: a quorum queue that served earlier
 * phases carries their log and snapshots, which would make the comparison uneven.
 */
async function matsPhase(run: string): Promise<PhaseResult> {
  const prefix = `${PREFIX}${run}.`;
  return queues.phase(matsQueues(prefix), (onStoppable) => matsLoop(run, prefix, onStoppable));
}

async function matsLoop(
  run: string,
  prefix: string,
  onStoppable: (stop: () => Promise<void>) => void,
): Promise<PhaseResult> {
  const transport = new AmqpTransport({
    url: URL_,
    name: `${PREFIX}mats${run}`,
    exchange: `${PREFIX}pubsub`,
  });
  const factory = new MatsFactory({
    appName: 'MatsBench',
    appVersion: '1',
    nodeName: `bench${run}`,
    transport,
    queuePrefix: prefix,
    concurrency: TIMING.inFlight,
  });
  const waiting = new Map<string, () => void>();
  onStoppable(async () => {
    await factory.stop(500);
    await transport.close();
  });
  try {
    factory.single<typeof PAYLOAD, typeof PAYLOAD>('Bench.echo', (_ctx, incoming) => incoming);
    factory.terminator<string, typeof PAYLOAD>('Bench.replies', (_ctx, id) => {
      const done = waiting.get(id);
      waiting.delete(id);
      done?.();
    });
    if (!(await factory.waitForReceiving(15_000))) throw new Error('Mats endpoints are not receiving');
    // A named initiator: the next request is started from inside the terminator's lambda, where the default
    // initiator would join the stage (a child flow) instead of starting a new flow.
    const initiator = factory.getOrCreateInitiator('bench');
    let seq = 0;
    const driver = new LoopDriver(TIMING, (onReply) => {
      const id = `m${++seq}`;
      waiting.set(id, onReply);
      initiator
        .initiate((init) =>
          init
            .traceId(`bench.${id}`)
            .from('bench')
            .to('Bench.echo')
            .replyTo('Bench.replies', id)
            .request(PAYLOAD),
        )
        .catch((err: unknown) => {
          if (!queues.interrupted) throw new Error(`Mats initiation failed: ${String(err)}`);
        });
    });
    return await driver.run();
  } finally {
    await factory.stop(2000);
    await transport.close();
    if (!queues.interrupted) await queues.delete(matsQueues(prefix));
  }
}

/** A raw phase; the loop deletes its queues itself. */
async function rawPhaseOf(run: string, wire: boolean): Promise<PhaseResult> {
  const names = rawQueueNames(PREFIX, `${run}${wire ? 'w' : ''}`);
  const result = await queues.phase(names, (onStoppable) => rawPhase(RAW, run, wire, onStoppable));
  queues.deleted(names);
  return result;
}

/** The phases of one CPU arrangement: `raw`, `mats` and `raw+wire`, one of each per round. */
interface Arrangement {
  name: 'split' | 'shared';
  raw: PhaseResult[];
  mats: PhaseResult[];
  rawWire: PhaseResult[];
}

async function main(): Promise<void> {
  const started = Date.now();
  const split: CpuSplit | { unavailable: string } =
    CPU_SPLIT === '0' ? { unavailable: 'CPU_SPLIT=0' } : splitCpus();
  // The broker is a shared service: after Ctrl-C, leave it neither pinned to half the CPUs nor holding our queues.
  queues.deleteOnSignal(() => {
    if ('restore' in split) split.restore();
  });
  const arrangements: Arrangement[] = [];
  if ('apply' in split) arrangements.push({ name: 'split', raw: [], mats: [], rawWire: [] });
  arrangements.push({ name: 'shared', raw: [], mats: [], rawWire: [] });
  try {
    // Rounds alternate the arrangements and, within each, the loops, so machine noise hits all alike.
    for (let round = 0; round < ROUNDS; round++) {
      for (const a of arrangements) {
        if ('apply' in split) {
          if (a.name === 'split') split.apply();
          else split.restore();
        }
        const run = `${round}${a.name[1]}`;
        a.raw.push(await rawPhaseOf(run, false));
        a.mats.push(await matsPhase(run));
        a.rawWire.push(await rawPhaseOf(run, true));
      }
    }
  } finally {
    if ('restore' in split) split.restore();
    await queues.deleteAll();
  }
  console.log(
    `Mats request/reply vs raw amqplib on ${URL_.replace(/\/\/[^@]*@/, '//')} — ${cpus().length} CPUs, load ${loadavg()[0]!.toFixed(2)}`,
  );
  const figures: Record<string, unknown> = {
    bench: 'mats',
    inflight: TIMING.inFlight,
    phase_ms: TIMING.measureMs,
    rounds: ROUNDS,
    raw_coalesced_writes: RAW.coalesce,
    raw_direct_publish: RAW.directPublish,
    cpu_split:
      'apply' in split
        ? { client_cpus: split.client, broker_cpus: split.broker }
        : { unavailable: split.unavailable },
  };
  for (const a of arrangements) figures[a.name] = report(a, 'apply' in split ? split : undefined);
  // The headline is the split arrangement when there is one: see cpuSplit.ts for why.
  const headline = figures[arrangements[0]!.name] as ReturnType<typeof report>;
  figures.ratio_vs_raw = headline.ratio_vs_raw;
  figures.ratio_vs_raw_arrangement = arrangements[0]!.name;
  figures.runtime_s = round2((Date.now() - started) / 1000);
  try {
    mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
    writeFileSync(
      new URL(`./results/mats-${Date.now()}.json`, import.meta.url),
      `${JSON.stringify(figures)}\n`,
    );
  } catch {
    // The results file is a convenience; the figures are printed below either way.
  }
  console.log('');
  console.log(JSON.stringify(figures));
}

/** Prints one arrangement's table and returns its figures. */
function report(a: Arrangement, split: CpuSplit | undefined) {
  const r = meanOf(a.raw);
  const w = meanOf(a.rawWire);
  const m = meanOf(a.mats);
  const ratios = a.raw.map((x, i) => a.mats[i]!.perSecond / x.perSecond).sort((x, y) => x - y);
  const medianRatio = ratios[Math.floor(ratios.length / 2)]!;
  const row = (name: string, x: PhaseResult): string =>
    `${name.padEnd(8)}| ${String(TIMING.inFlight).padStart(8)} | ${String(x.roundTrips).padStart(11)} | ${x.seconds.toFixed(1).padStart(7)} | ${x.perSecond.toFixed(0).padStart(9)} | ${x.p50Ms.toFixed(2).padStart(7)} | ${x.p99Ms.toFixed(2).padStart(7)} | ${x.cpuUsPerTrip.toFixed(0).padStart(10)} | ${x.brokerCpuUsPerTrip.toFixed(0).padStart(10)}`;
  console.log('');
  console.log(
    a.name === 'split'
      ? `CPUs split: this process on CPU ${split!.client}, RabbitMQ on CPU ${split!.broker}`
      : 'CPUs shared: this process and RabbitMQ on all CPUs',
  );
  console.log(
    'loop    | inflight | round trips | seconds | trips/s   | p50 ms  | p99 ms  | client CPU µs/trip | broker CPU µs/trip',
  );
  console.log(
    '--------|----------|-------------|---------|-----------|---------|---------|--------------------|-------------------',
  );
  console.log(row('raw', r));
  console.log(row('mats', m));
  console.log(row('raw+wire', w));
  console.log(`per-round ratios (mats / raw): ${ratios.map((x) => x.toFixed(2)).join(', ')}`);
  const figures = (x: PhaseResult) => ({
    trips_per_s: Math.round(x.perSecond),
    p50_ms: round2(x.p50Ms),
    p99_ms: round2(x.p99Ms),
    cpu_us_per_trip: Math.round(x.cpuUsPerTrip),
    broker_cpu_us_per_trip: Math.round(x.brokerCpuUsPerTrip),
  });
  return {
    raw: figures(r),
    mats: figures(m),
    raw_wire: figures(w),
    ratio_raw_wire_vs_raw: round2(w.perSecond / r.perSecond),
    ratio_vs_raw: round2(medianRatio),
    ratio_of_means: round2(m.perSecond / r.perSecond),
    round_ratios: ratios.map(round2),
    // Client CPU per round trip of each round (µs): less sensitive to other load on the machine than trips/s.
    round_cpu_us_per_trip: {
      raw: a.raw.map((x) => Math.round(x.cpuUsPerTrip)),
      mats: a.mats.map((x) => Math.round(x.cpuUsPerTrip)),
      raw_wire: a.rawWire.map((x) => Math.round(x.cpuUsPerTrip)),
    },
  };
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
