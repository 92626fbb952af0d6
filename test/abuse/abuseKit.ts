import { expect } from 'chai';
import { createTestDatabase, type TestDatabase } from '../../harness/databases.ts';
import { RawClient, type RawClientOptions } from '../helpers/rawClient.ts';
import { serviceUrls } from '../../harness/services.ts';
import { requireClusterServices } from '../../harness/startTestCluster.ts';
import { createTestBroker, type TestBroker } from '../../harness/transports.ts';
import { runId } from '../../harness/runState.ts';
import { AbuseNode } from './AbuseNode.ts';
import { GoodClient, percentile, type GoodClientFigures } from './GoodClient.ts';

const MB = 1024 * 1024;
/**
 * The longest an attack runs (its waits for containment included); with the warm-up, the good client's 5 s request
 * timeout and two GCs a test stays well inside its 90 s.
 */
const ATTACK_BOUND_MS = 45_000;

/** Figures of one attack, printed as one line and asserted on. */
export interface AttackResult {
  good: GoodClientFigures;
  /** Node RSS after GC before the attack, bytes. */
  rssBefore: number;
  /** Peak RSS during the attack (kernel high-water mark) minus `rssBefore`, bytes. */
  peakGrowth: number;
  /** Node RSS after GC after the attack minus `rssBefore`, bytes. */
  rssGrowthAfterGc: number;
  /** V8 heap after GC after the attack minus before, bytes. */
  heapGrowthAfterGc: number;
  /** What happened to the hostile client, in words (from the attack). */
  hostile: string;
  /** Whether the node process was still running after the attack. */
  nodeAlive: boolean;
}

/** The bounds one attack must stay within (docs/protocol.md section 12 and the abuse brief). */
export interface Bounds {
  /** p99 of the good client's round trips, ms. @default 1000 */
  p99Ms?: number;
  /** RSS growth after GC, MB. @default 100 */
  rssGrowthMb?: number;
  /** Peak RSS growth during the attack, MB (unchecked when absent). */
  peakGrowthMb?: number;
}

/** What an attack gets: the node's URL and a way to open hostile connections that are cleaned up after the test. */
export interface AttackContext {
  url: string;
  node: AbuseNode;
  connect: (options?: RawClientOptions) => Promise<RawClient>;
  /**
   * Waits until the good client has had `n` more requests answered (a measurement window of about n × 25 ms that
   * stretches when the node stalls), bounded by `timeoutMs`; never rejects: a stall shows in the latencies.
   */
  goodAnswers: (n: number, timeoutMs?: number) => Promise<void>;
}

/** The per-file harness: one node process, a fresh good client per attack, hostile connections closed after each test. */
export interface AbuseKit {
  readonly node: AbuseNode;
  /** Opens a raw hostile connection (offering permessage-deflate unless told not to); terminated after the test. */
  connect(options?: RawClientOptions): Promise<RawClient>;
  /**
   * Runs `attack` while a good client requests `Abuse.echo` every 25 ms, measures the node's memory around it, prints
   * one line of figures, and returns them. The attack returns what happened to the hostile client, in words.
   */
  attack(name: string, attack: (ctx: AttackContext) => Promise<string>): Promise<AttackResult>;
}

let suiteCounter = 0;

/**
 * Declares a suite whose tests attack one MatsSocket node in a child process (RabbitMQ + MariaDB, default options).
 * A node that died in a test is restarted for the next one (the dying test fails on its own figures).
 */
export function describeAbuse(title: string, body: (kit: () => AbuseKit) => void): void {
  describe(`Abuse: ${title} [RabbitMQ + MariaDB, node in a child process]`, function () {
    this.timeout(90_000);
    const suite = ++suiteCounter;
    let db: TestDatabase | undefined;
    let broker: TestBroker | undefined;
    let node: AbuseNode | undefined;
    let starts = 0;
    const hostiles: RawClient[] = [];
    let good: GoodClient | undefined;

    const startNode = async (): Promise<AbuseNode> =>
      AbuseNode.start({
        nodeName: `abuse${suite}_${++starts}_${runId}`,
        amqpUrl: serviceUrls.rabbitmq,
        dbUrl: db!.url,
        queuePrefix: broker!.prefix,
      });

    before(async function () {
      this.timeout(60_000);
      await requireClusterServices(this, 'rabbitmq', 'mysql');
      db = await createTestDatabase('mysql');
      broker = await createTestBroker('rabbitmq');
      node = await startNode();
    });

    beforeEach(async function () {
      if (node && !node.alive) {
        this.timeout(60_000);
        node = await startNode();
      }
    });

    afterEach(async function () {
      this.timeout(30_000);
      // A failed test may leave the node busy with the attack's backlog: the next test gets a fresh node.
      const failed = this.currentTest?.state === 'failed';
      if (failed) node?.kill();
      for (const h of hostiles.splice(0)) h.terminate();
      await good?.close();
      good = undefined;
      if (failed) await node?.exited;
    });

    after(async function () {
      this.timeout(30_000);
      await node?.stop();
      await broker?.close();
      await db?.drop();
    });

    const connect = async (options: RawClientOptions = {}): Promise<RawClient> => {
      const client = await RawClient.connect(node!.url, { timeoutMs: 10_000, ...options });
      hostiles.push(client);
      return client;
    };

    let attacks = 0;
    const kit: AbuseKit = {
      get node() {
        return node!;
      },
      connect,
      async attack(name, attack) {
        const n = node!;
        good = new GoodClient(n.url, `good${suite}_${++attacks}`, `good-${runId}-${suite}-${attacks}`, 5000);
        await good.start();
        const warm = good;
        await until(() => warm.answered >= 20, 'the good client warming up (before any attack)', 15_000);
        good.resetLatencies();
        const before = await n.memory(true, 10_000);
        const started = Date.now();
        n.resetPeak();
        let hostile: string;
        try {
          const left = (): number => Math.max(0, started + ATTACK_BOUND_MS - Date.now());
          const goodAnswers = async (count: number, timeoutMs = 15_000): Promise<void> => {
            const target = warm.answered + count;
            await until(
              () => warm.answered >= target,
              `${count} more good answers`,
              Math.min(timeoutMs, left()),
            ).catch(() => undefined);
          };
          let bound: NodeJS.Timeout | undefined;
          hostile = await Promise.race([
            attack({ url: n.url, node: n, connect, goodAnswers }),
            new Promise<string>((resolve) => {
              bound = setTimeout(
                () => resolve(`the attack did not end within ${ATTACK_BOUND_MS} ms`),
                ATTACK_BOUND_MS,
              );
            }),
          ]).finally(() => clearTimeout(bound));
        } catch (err) {
          hostile = `the attack threw: ${(err as Error).message.slice(0, 300)}`;
        }
        const nodeAlive = n.alive;
        const peak = nodeAlive ? n.procRss().peak : NaN;
        const figures = await good.finish();
        const after = nodeAlive ? await n.memory(true, 10_000).catch(() => undefined) : undefined;
        const seconds = ((Date.now() - started) / 1000).toFixed(1);
        const result: AttackResult = {
          good: figures,
          rssBefore: before.rss,
          peakGrowth: peak - before.rss,
          rssGrowthAfterGc: after ? after.rss - before.rss : NaN,
          heapGrowthAfterGc: after ? after.heapUsed - before.heapUsed : NaN,
          hostile: `${nodeAlive ? hostile : `${hostile}; NODE DIED: ${n.exitDescription.slice(0, 300)}`} (${seconds} s)`,
          nodeAlive: nodeAlive && after !== undefined,
        };
        console.log(figuresLine(name, result));
        return result;
      },
    };
    body(() => kit);
  });
}

/** One line of figures per test (the report quotes them). */
export function figuresLine(name: string, r: AttackResult): string {
  const g = r.good;
  const mb = (b: number): string => (Number.isNaN(b) ? '?' : (b / MB).toFixed(1));
  return (
    `      [${name}] good: ${g.sent} sent, ${g.answered} answered, ${g.lost.length} lost, ${g.doubled.length} doubled, ` +
    `${g.retries} RETRY, p50 ${percentile(g.latenciesMs, 50).toFixed(0)} ms, p99 ${percentile(g.latenciesMs, 99).toFixed(0)} ms, ` +
    `max ${percentile(g.latenciesMs, 100).toFixed(0)} ms | node RSS ${mb(r.rssBefore)} MB, peak +${mb(r.peakGrowth)} MB, ` +
    `after GC +${mb(r.rssGrowthAfterGc)} MB (heap +${mb(r.heapGrowthAfterGc)} MB) | hostile: ${r.hostile}`
  );
}

/**
 * The violations of (b), (c) and (d) of the brief: the node alive, the good client answered exactly once without
 * RETRY within the p99 bound, the node's memory bounded. Collected rather than asserted one by one, so a failing test
 * names every bound it broke (a loaded machine breaks the latency bound; the memory bounds do not depend on load).
 */
export function goodClientProblems(r: AttackResult, bounds: Bounds = {}): string[] {
  const problems: string[] = [];
  const g = r.good;
  const mb = (b: number): string => (b / MB).toFixed(1);
  if (!r.nodeAlive) problems.push(`the node died or stopped answering (${r.hostile})`);
  if (g.lost.length > 0) problems.push(`${g.lost.length} good requests lost (first ${g.lost[0]})`);
  if (g.doubled.length > 0)
    problems.push(`${g.doubled.length} good requests answered twice (first ${g.doubled[0]})`);
  if (g.answered !== g.sent) problems.push(`${g.answered} of ${g.sent} good requests answered`);
  if (g.retries > 0) problems.push(`${g.retries} RETRYs to the good client`);
  const p99 = percentile(g.latenciesMs, 99);
  if (!(p99 < (bounds.p99Ms ?? 1000)))
    problems.push(`good p99 ${p99.toFixed(0)} ms >= ${bounds.p99Ms ?? 1000} ms`);
  const rssBound = bounds.rssGrowthMb ?? 100;
  if (!(r.rssGrowthAfterGc / MB < rssBound))
    problems.push(`node RSS after GC grew ${mb(r.rssGrowthAfterGc)} MB >= ${rssBound} MB`);
  if (bounds.peakGrowthMb !== undefined && !(r.peakGrowth / MB < bounds.peakGrowthMb))
    problems.push(`node peak RSS grew ${mb(r.peakGrowth)} MB >= ${bounds.peakGrowthMb} MB during the attack`);
  return problems;
}

/** Fails with every problem listed (the hostile's containment problems first, then the good client's). */
export function expectNoProblems(...problems: string[][]): void {
  expect(problems.flat(), 'bounds broken').to.deep.equal([]);
}

/** Asserts (b), (c) and (d) of the brief; see {@link goodClientProblems}. */
export function expectGoodClientUnharmed(r: AttackResult, bounds: Bounds = {}): void {
  expectNoProblems(goodClientProblems(r, bounds));
}

/** Resolves when `condition` holds (polled every 10 ms); rejects with `what` after `timeoutMs`. */
export async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
