/**
 * `npm run bench:mats`: request/reply round trips through a single-stage Mats endpoint on RabbitMQ (persistent,
 * publisher-confirmed, manual acks, quorum queues, no DB), against the same workload done with raw amqplib, in one
 * run and with the same number of messages in flight (`INFLIGHT`).
 *
 * - **raw**: the fastest correct loop we know: one connection for publishing and one for consuming (both
 *   `noDelay: true`), confirm channels, persistent messages, manual acks, quorum queues, and the write coalescing
 *   the AMQP transport uses (`coalesceWrites.ts`: a tick's frames in one `writev`; 6,800 → 8,400 trips/s here;
 *   `RAW_COALESCE=0` measures plain amqplib writes, one syscall per frame). The "server" consumes a
 *   request, publishes the reply, waits for its confirm, then acks the request; the "client" consumes the reply, acks
 *   it and publishes the next request (confirmed).
 * - **raw+wire**: the same raw loop, but each message carries what the Mats wire format mandates
 *   (`mats-semantics.md` 4.1: contentType, appId, type, timestamp, the seven `mats_*` headers) and a body of the
 *   envelope's size. It shows how much of the gap is the wire format itself rather than the Mats code.
 * - **mats**: `MatsFactory.single('Bench.echo')` replying to a terminator, driven by a named initiator
 *   (`request` with `replyTo`); the terminator starts the next request. Stage concurrency = `INFLIGHT`.
 *
 * The phases alternate (raw, mats, raw, mats, ...; `ROUNDS` pairs) so that machine noise hits both alike; each round
 * trip's latency is measured from the request's publish to the reply's arrival. `ratio_vs_raw` is the median of the
 * per-round ratios (mats / raw round trips per second): a noisy neighbour slowing one round does not decide it.
 * Queues live under a random prefix and are deleted afterwards. Prints a table, then (last line) the figures as JSON.
 *
 * Environment: `RABBITMQ_URL` (default amqp://guest:guest@127.0.0.1:5672), `PHASE_MS` (default 4000), `ROUNDS`
 * (default 3), `INFLIGHT` (default 100), `RAW_COALESCE` (default 1).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import * as amqp from 'amqplib';
import { AmqpTransport } from '../src/broker/AmqpTransport.ts';
import { amqpSocketOf, coalesceWrites } from '../src/broker/coalesceWrites.ts';
import { MatsFactory } from '../src/mats/MatsFactory.ts';
import { cpuSnapshot } from './pipeline/cpu.ts';

const URL_ = process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const PHASE_MS = Number(process.env.PHASE_MS ?? 4000);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const WARMUP_MS = 1000;
const INFLIGHT = Number(process.env.INFLIGHT ?? 100);
const RAW_COALESCE = process.env.RAW_COALESCE !== '0';
const PREFIX = `bench.${randomBytes(4).toString('hex')}.`;
const QUORUM = { durable: true, arguments: { 'x-queue-type': 'quorum' } };
const PAYLOAD = { number: 3.14, string: 'x'.repeat(100), sleepTime: 0 };

interface PhaseResult {
  roundTrips: number;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU time of this (client) process per round trip, in µs: the broker gets what is left of the machine. */
  cpuUsPerTrip: number;
  /** CPU time of the local RabbitMQ server per round trip, in µs (Linux /proc, 10 ms ticks; NaN elsewhere). */
  brokerCpuUsPerTrip: number;
}

/** Drives `INFLIGHT` concurrent request/reply loops: `send(done)` starts one; `done()` records it and starts the next. */
class Driver {
  readonly latencies: number[] = [];
  #measuring = false;
  #stopped = false;
  #count = 0;
  #inFlight = 0;
  #drained: (() => void) | undefined;
  readonly #send: (onReply: () => void) => void;

  constructor(send: (onReply: () => void) => void) {
    this.#send = send;
  }

  async run(): Promise<PhaseResult> {
    for (let i = 0; i < INFLIGHT; i++) this.#start();
    await sleep(WARMUP_MS);
    this.#measuring = true;
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const broker0 = brokerCpuMs();
    await sleep(PHASE_MS);
    const cpu = process.cpuUsage(cpu0);
    const brokerMs = brokerCpuMs() - broker0;
    const seconds = (performance.now() - t0) / 1000;
    this.#measuring = false;
    const roundTrips = this.#count;
    this.#stopped = true;
    // Let the outstanding round trips finish, so the next phase starts on a quiet broker.
    if (this.#inFlight > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const pick = (q: number): number =>
      sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
    return {
      roundTrips,
      seconds,
      perSecond: roundTrips / seconds,
      p50Ms: pick(0.5),
      p99Ms: pick(0.99),
      cpuUsPerTrip: (cpu.user + cpu.system) / Math.max(1, roundTrips),
      brokerCpuUsPerTrip: (brokerMs * 1000) / Math.max(1, roundTrips),
    };
  }

  #start(): void {
    if (this.#stopped) return;
    const t = performance.now();
    this.#inFlight++;
    this.#send(() => {
      this.#inFlight--;
      if (this.#measuring) {
        this.#count++;
        this.latencies.push(performance.now() - t);
      }
      if (this.#stopped) {
        if (this.#inFlight === 0) this.#drained?.();
      } else this.#start();
    });
  }
}

/** CPU ms the local RabbitMQ (`beam.smp`) has used so far; NaN when it is not visible (not Linux, remote broker). */
function brokerCpuMs(): number {
  try {
    return cpuSnapshot().rabbitmq ?? NaN;
  } catch {
    return NaN;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** What the Mats wire format adds to every message (section 4.1), for the raw+wire loop. */
function matsLikeProperties(id: string): amqp.Options.Publish {
  return {
    contentType: 'application/json',
    appId: 'MatsBench',
    type: 'REQUEST',
    timestamp: Math.floor(Date.now() / 1000),
    headers: {
      mats_TraceId: `bench.${id}`,
      mats_MsgId: `m_abcdefghij_Tlq2x7abc_${id}`,
      mats_CallType: 'REQUEST',
      mats_From: 'bench',
      mats_To: 'Bench.echo',
      mats_InitApp: 'MatsBench',
      mats_InitId: 'bench',
    },
  };
}

/** The raw amqplib loop; with `wire`, messages are as large and as annotated as Mats messages. */
async function rawPhase(run: number, wire: boolean): Promise<PhaseResult> {
  const requests = `${PREFIX}raw${run}${wire ? 'w' : ''}.requests`;
  const replies = `${PREFIX}raw${run}${wire ? 'w' : ''}.replies`;
  const pubConn = await amqp.connect(URL_, {
    noDelay: true,
    clientProperties: { connection_name: `${PREFIX}raw-pub` },
  });
  const conConn = await amqp.connect(URL_, {
    noDelay: true,
    clientProperties: { connection_name: `${PREFIX}raw-con` },
  });
  if (RAW_COALESCE) {
    for (const m of [pubConn, conConn]) {
      const socket = amqpSocketOf(m);
      if (!socket)
        throw new Error("cannot coalesce the raw loop's writes: amqplib has no socket where expected");
      coalesceWrites(socket);
    }
  }
  try {
    const pub = await pubConn.createConfirmChannel();
    const serverCh = await conConn.createChannel();
    const clientCh = await conConn.createChannel();
    await pub.assertQueue(requests, QUORUM);
    await pub.assertQueue(replies, QUORUM);
    await serverCh.prefetch(INFLIGHT);
    await clientCh.prefetch(INFLIGHT);
    const waiting = new Map<string, () => void>();
    let seq = 0;
    // A Mats envelope around PAYLOAD is about 630 bytes.
    const pad = wire ? 'p'.repeat(480) : '';
    const body = (id: string) => Buffer.from(JSON.stringify({ id, data: PAYLOAD, pad }));
    const extra = (id: string): amqp.Options.Publish => (wire ? matsLikeProperties(id) : {});
    await serverCh.consume(requests, (msg) => {
      if (!msg) return;
      const id = msg.properties.messageId as string;
      pub.publish(
        '',
        replies,
        body(id),
        { persistent: true, mandatory: true, messageId: id, ...extra(id) },
        (err) => {
          if (err) serverCh.reject(msg, true);
          else serverCh.ack(msg);
        },
      );
    });
    await clientCh.consume(replies, (msg) => {
      if (!msg) return;
      clientCh.ack(msg);
      const id = msg.properties.messageId as string;
      const done = waiting.get(id);
      waiting.delete(id);
      done?.();
    });
    const driver = new Driver((onReply) => {
      const id = `r${++seq}`;
      waiting.set(id, onReply);
      pub.publish(
        '',
        requests,
        body(id),
        { persistent: true, mandatory: true, messageId: id, ...extra(id) },
        (err) => {
          if (err) throw new Error(`raw request not confirmed: ${String(err)}`);
        },
      );
    });
    const result = await driver.run();
    await pub.deleteQueue(requests);
    await pub.deleteQueue(replies);
    return result;
  } finally {
    await pubConn.close().catch(() => undefined);
    await conConn.close().catch(() => undefined);
  }
}

/** The Mats loop. */
async function matsPhase(run: number): Promise<PhaseResult> {
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
    queuePrefix: PREFIX,
    concurrency: INFLIGHT,
  });
  const waiting = new Map<string, () => void>();
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
    const driver = new Driver((onReply) => {
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
          throw new Error(`Mats initiation failed: ${String(err)}`);
        });
    });
    return await driver.run();
  } finally {
    await factory.stop(2000);
    await transport.close();
  }
}

async function cleanup(): Promise<void> {
  const conn = await amqp.connect(URL_, { clientProperties: { connection_name: `${PREFIX}cleanup` } });
  try {
    for (const q of ['Bench.echo', 'Bench.echo:i', 'Bench.replies', 'Bench.replies:i']) {
      const ch = await conn.createChannel();
      await ch.deleteQueue(`${PREFIX}${q}`).catch(() => undefined);
      await ch.close().catch(() => undefined);
    }
    const ch = await conn.createChannel();
    await ch.deleteExchange(`${PREFIX}pubsub`).catch(() => undefined);
    await ch.close().catch(() => undefined);
  } finally {
    await conn.close();
  }
}

function mean(results: PhaseResult[]): PhaseResult {
  const sum = (f: (r: PhaseResult) => number): number => results.reduce((a, r) => a + f(r), 0);
  const roundTrips = sum((r) => r.roundTrips);
  const seconds = sum((r) => r.seconds);
  return {
    roundTrips,
    seconds,
    perSecond: roundTrips / seconds,
    p50Ms: sum((r) => r.p50Ms) / results.length,
    p99Ms: sum((r) => r.p99Ms) / results.length,
    cpuUsPerTrip: sum((r) => r.cpuUsPerTrip) / results.length,
    brokerCpuUsPerTrip: sum((r) => r.brokerCpuUsPerTrip) / results.length,
  };
}

async function main(): Promise<void> {
  const started = Date.now();
  const raw: PhaseResult[] = [];
  const rawWire: PhaseResult[] = [];
  const mats: PhaseResult[] = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      raw.push(await rawPhase(round, false));
      mats.push(await matsPhase(round));
      rawWire.push(await rawPhase(round, true));
    }
  } finally {
    await cleanup();
  }
  const r = mean(raw);
  const w = mean(rawWire);
  const m = mean(mats);
  const ratios = raw.map((x, i) => mats[i]!.perSecond / x.perSecond).sort((a, b) => a - b);
  const medianRatio = ratios[Math.floor(ratios.length / 2)]!;
  const row = (name: string, x: PhaseResult): string =>
    `${name.padEnd(8)}| ${String(INFLIGHT).padStart(8)} | ${String(x.roundTrips).padStart(11)} | ${x.seconds.toFixed(1).padStart(7)} | ${x.perSecond.toFixed(0).padStart(9)} | ${x.p50Ms.toFixed(2).padStart(7)} | ${x.p99Ms.toFixed(2).padStart(7)} | ${x.cpuUsPerTrip.toFixed(0).padStart(10)} | ${x.brokerCpuUsPerTrip.toFixed(0).padStart(10)}`;
  console.log(
    `Mats request/reply vs raw amqplib on ${URL_.replace(/\/\/[^@]*@/, '//')} — ${cpus().length} CPUs, load ${loadavg()[0]!.toFixed(2)}`,
  );
  console.log('');
  console.log(
    'loop    | inflight | round trips | seconds | trips/s   | p50 ms  | p99 ms  | client CPU µs/trip | broker CPU µs/trip',
  );
  console.log(
    '--------|----------|-------------|---------|-----------|---------|---------|--------------------|-------------------',
  );
  console.log(row('raw', r));
  console.log(row('mats', m));
  console.log(row('raw+wire', w));
  console.log('');
  console.log(`per-round ratios (mats / raw): ${ratios.map((x) => x.toFixed(2)).join(', ')}`);
  console.log('');
  const figures = {
    bench: 'mats',
    inflight: INFLIGHT,
    phase_ms: PHASE_MS,
    rounds: ROUNDS,
    raw_coalesced_writes: RAW_COALESCE,
    raw: {
      trips_per_s: Math.round(r.perSecond),
      p50_ms: round2(r.p50Ms),
      p99_ms: round2(r.p99Ms),
      cpu_us_per_trip: Math.round(r.cpuUsPerTrip),
      broker_cpu_us_per_trip: Math.round(r.brokerCpuUsPerTrip),
    },
    mats: {
      trips_per_s: Math.round(m.perSecond),
      p50_ms: round2(m.p50Ms),
      p99_ms: round2(m.p99Ms),
      cpu_us_per_trip: Math.round(m.cpuUsPerTrip),
      broker_cpu_us_per_trip: Math.round(m.brokerCpuUsPerTrip),
    },
    raw_wire: {
      trips_per_s: Math.round(w.perSecond),
      p50_ms: round2(w.p50Ms),
      p99_ms: round2(w.p99Ms),
      cpu_us_per_trip: Math.round(w.cpuUsPerTrip),
      broker_cpu_us_per_trip: Math.round(w.brokerCpuUsPerTrip),
    },
    ratio_raw_wire_vs_raw: round2(w.perSecond / r.perSecond),
    ratio_vs_raw: round2(medianRatio),
    ratio_of_means: round2(m.perSecond / r.perSecond),
    round_ratios: ratios.map(round2),
    // Client CPU per round trip of each round (µs): less sensitive to other load on the machine than trips/s.
    round_cpu_us_per_trip: {
      raw: raw.map((x) => Math.round(x.cpuUsPerTrip)),
      mats: mats.map((x) => Math.round(x.cpuUsPerTrip)),
      raw_wire: rawWire.map((x) => Math.round(x.cpuUsPerTrip)),
    },
    runtime_s: round2((Date.now() - started) / 1000),
  };
  try {
    mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
    writeFileSync(
      new URL(`./results/mats-${Date.now()}.json`, import.meta.url),
      `${JSON.stringify(figures)}\n`,
    );
  } catch {
    // The results file is a convenience; the figures are printed below either way.
  }
  console.log(JSON.stringify(figures));
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
