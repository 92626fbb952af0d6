import type { MessageEvent } from '../../src/client/clientEvents.ts';
import type { MatsSocketClient } from '../../src/client/MatsSocketClient.ts';
import { parseReplaySmid } from '../../src/server/topics/TopicSubscriptions.ts';
import { ChaosIds, type PushRequest, type Pushed, type TopicMessage } from './chaosEndpoints.ts';

/** Something the accounting found wrong, with when it was seen (ms after the chaos began). */
export interface Anomaly {
  atMs: number;
  what: string;
}

/** Per client: the pushes it asked for and got, and the topic messages it saw. */
interface ClientBook {
  index: number;
  /** Pushes the server committed (their requests resolved): seq 0 .. expected - 1. */
  pushesExpected: number;
  /** Push seqs as they arrived, in order, and when. */
  pushesSeen: number[];
  pushesSeenAt: number[];
  /** When each push request resolved, by its `from`. */
  pushResolvedAt: Map<number, number>;
  /** Topic sequence numbers as they arrived, `'LOST'` where a SUB_LOST came, and when. */
  topicEvents: (number | 'LOST')[];
  topicEventsAt: number[];
  subscribed: boolean;
}

export interface WorkloadOptions {
  clients: readonly MatsSocketClient[];
  topicId: string;
  /** ms since the chaos began (for anomaly times). */
  clock: () => number;
  /** Pushes per push request. @default 3 */
  pushesPerRequest?: number;
  /** Pause between one client's push requests, and between its publishes, ms. @default [150, 250] */
  pauseMs?: readonly [number, number];
}

/**
 * The soak's server-send and topic traffic on the clients of a load run: each client keeps one `Chaos.push`
 * request (the server sends it numbered messages) and one `Chaos.publish` request (a topic message) going, and
 * subscribes to the topic. Records everything for {@link pushReport} and {@link topicReport}.
 */
export class ChaosWorkload {
  readonly #o: WorkloadOptions;
  readonly #books: ClientBook[];
  readonly #loops: Promise<void>[] = [];
  readonly anomalies: Anomaly[] = [];
  /** Topic messages whose publish request resolved. */
  published = 0;
  /** Their trace ids. */
  readonly publishedTraceIds = new Set<string>();
  pushRequests = 0;
  #running = false;

  constructor(options: WorkloadOptions) {
    this.#o = options;
    this.#books = options.clients.map((client, index) => {
      const book: ClientBook = {
        index,
        pushesExpected: 0,
        pushesSeen: [],
        pushesSeenAt: [],
        pushResolvedAt: new Map(),
        topicEvents: [],
        topicEventsAt: [],
        subscribed: false,
      };
      client.terminator(ChaosIds.pushed, (e: MessageEvent) => {
        book.pushesSeen.push((e.data as Pushed).seq);
        book.pushesSeenAt.push(options.clock());
      });
      const topicEvent = (e: number | 'LOST'): void => {
        book.topicEvents.push(e);
        book.topicEventsAt.push(options.clock());
      };
      client.subscribe(options.topicId, (e) => {
        const seq = parseReplaySmid(e.messageId)?.seq;
        if (seq === undefined) this.#anomaly(`client ${index}: PUB with a non-replay smid ${e.messageId}`);
        else topicEvent(seq);
      });
      client.on('subscription', (e) => {
        if (e.topicId !== options.topicId) return;
        if (e.type === 'OK') book.subscribed = true;
        else if (e.type === 'LOST_MESSAGES') topicEvent('LOST');
        else this.#anomaly(`client ${index}: subscription ${e.type}`);
      });
      // A session the server closes loses whatever was outstanding on it: one line per client (the first close,
      // then how many followed), as a client retrying into an outage can be closed hundreds of times.
      let closes: { anomaly: Anomaly; first: string; count: number; rejected: number } | undefined;
      client.on('session:closed', (e) => {
        if (!closes) {
          const first = `client ${index}: session closed by the server: ${e.code} ${e.codeName} "${e.reason}"`;
          closes = { anomaly: { atMs: options.clock(), what: first }, first, count: 0, rejected: 0 };
          this.anomalies.push(closes.anomaly);
        }
        closes.count++;
        closes.rejected += e.outstandingInitiations;
        closes.anomaly.what = `${closes.first}; ${closes.count} session(s) closed, ${closes.rejected} outstanding requests rejected`;
      });
      return book;
    });
  }

  /** Every client subscribed (SUB_OK seen): publishes from now on must reach all of them. */
  get allSubscribed(): boolean {
    return this.#books.every((b) => b.subscribed);
  }

  start(): void {
    this.#running = true;
    this.#o.clients.forEach((client, i) => {
      this.#loops.push(this.#pushLoop(client, this.#books[i]!), this.#publishLoop(client, i));
    });
  }

  /** Stops issuing; resolves when every outstanding push/publish request has settled. */
  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
  }

  #anomaly(what: string): void {
    this.anomalies.push({ atMs: this.#o.clock(), what });
  }

  #pause(): Promise<void> {
    const [min, max] = this.#o.pauseMs ?? [150, 250];
    return new Promise((r) => setTimeout(r, min + Math.random() * (max - min)));
  }

  async #pushLoop(client: MatsSocketClient, book: ClientBook): Promise<void> {
    const n = this.#o.pushesPerRequest ?? 3;
    while (this.#running) {
      const request: PushRequest = { from: book.pushesExpected, n };
      const tid = `push-${book.index}-${request.from}`;
      this.pushRequests++;
      try {
        await client.request(ChaosIds.push, tid, request);
        book.pushResolvedAt.set(request.from, this.#o.clock());
        book.pushesExpected += n;
      } catch (err) {
        // Whether its pushes were committed is unknowable now: this client's push accounting ends here.
        this.#anomaly(`client ${book.index}: push request ${tid} failed (lost): ${String(err)}`);
        return;
      }
      await this.#pause();
    }
  }

  async #publishLoop(client: MatsSocketClient, index: number): Promise<void> {
    for (let n = 0; this.#running; n++) {
      const message: TopicMessage = { publisher: String(index), n };
      try {
        await client.request(ChaosIds.publish, `pub-${index}-${n}`, message);
        this.published++;
        this.publishedTraceIds.add(`pub-${index}-${n}`);
      } catch (err) {
        this.#anomaly(`client ${index}: publish request pub-${index}-${n} failed (lost): ${String(err)}`);
        return;
      }
      await this.#pause();
    }
  }

  /** True when every client has received every push it is owed (or more: the report tells). */
  get pushesSettled(): boolean {
    return this.#books.every((b) => b.pushesSeen.length >= b.pushesExpected);
  }

  /** True when every subscriber has seen topic seq `lastSeq` or was told (SUB_LOST) that it lost some. */
  topicSettled(lastSeq: number): boolean {
    return this.#books.every((b) => {
      const last = b.topicEvents.at(-1);
      return last === 'LOST' || b.topicEvents.some((s) => s === lastSeq);
    });
  }

  /** Server sends: each exactly once and in order per session. */
  pushReport(): PushReport {
    const r: PushReport = { expected: 0, delivered: 0, lost: 0, doubled: 0, outOfOrder: 0, problems: [] };
    const n = this.#o.pushesPerRequest ?? 3;
    for (const b of this.#books) {
      r.expected += b.pushesExpected;
      r.delivered += b.pushesSeen.length;
      const firstAt = new Map<number, number>();
      const doubled: number[] = [];
      const outOfOrder: number[] = [];
      let doubledAt = 0;
      let outOfOrderAt = 0;
      b.pushesSeen.forEach((seq, i) => {
        const at = b.pushesSeenAt[i]!;
        if (firstAt.has(seq)) {
          if (doubled.length === 0) doubledAt = at;
          doubled.push(seq);
        } else if (i > 0 && seq < b.pushesSeen[i - 1]!) {
          if (outOfOrder.length === 0) outOfOrderAt = at;
          outOfOrder.push(seq);
        }
        if (!firstAt.has(seq)) firstAt.set(seq, at);
      });
      const missing: number[] = [];
      for (let seq = 0; seq < b.pushesExpected; seq++) if (!firstAt.has(seq)) missing.push(seq);
      r.lost += missing.length;
      r.doubled += doubled.length;
      r.outOfOrder += outOfOrder.length;
      const c = `client ${b.index}`;
      if (missing.length > 0) {
        const batch = missing[0]! - (missing[0]! % n);
        r.problems.push({
          atMs: b.pushResolvedAt.get(batch) ?? 0,
          what: `${c} never got server sends ${compact(missing)} (their request push-${b.index}-${batch} was resolved)`,
        });
      }
      if (doubled.length > 0)
        r.problems.push({ atMs: doubledAt, what: `${c} got server sends twice: ${compact(doubled)}` });
      if (outOfOrder.length > 0)
        r.problems.push({
          atMs: outOfOrderAt,
          what: `${c} got server sends out of order: ${compact(outOfOrder)}`,
        });
    }
    return r;
  }

  /**
   * Topic: per subscriber, every seq 1..lastSeq is either seen or announced lost: a SUB_LOST covers every seq above
   * the last PUB the client had before it (the smid its SUB carried). Any other missing seq is a silent gap (its
   * time: when the client first saw a later seq). Repeats of a seq are allowed (BR-1: live delivery may overlap a
   * replay) and counted.
   */
  topicReport(lastSeq: number): TopicReport {
    const r: TopicReport = { seen: 0, reportedLost: 0, silentlyLost: 0, redelivered: 0, problems: [] };
    for (const b of this.#books) {
      const seen = new Set<number>();
      /** For each SUB_LOST: the seq of the PUB just before it (0: none). */
      const lostAfter: number[] = [];
      let previous = 0;
      for (const e of b.topicEvents) {
        if (e === 'LOST') {
          lostAfter.push(previous);
          continue;
        }
        if (seen.has(e)) r.redelivered++;
        seen.add(e);
        previous = e;
      }
      const silent: number[] = [];
      for (let seq = 1; seq <= lastSeq; seq++) {
        if (seen.has(seq)) r.seen++;
        else if (lostAfter.some((after) => after < seq)) r.reportedLost++;
        else silent.push(seq);
      }
      r.silentlyLost += silent.length;
      if (silent.length > 0) {
        const later = b.topicEvents.findIndex((e) => e !== 'LOST' && e > silent[0]!);
        r.problems.push({
          atMs: later >= 0 ? b.topicEventsAt[later]! : this.#o.clock(),
          what: `client ${b.index} silently missed topic seqs ${compact(silent)} (no SUB_LOST)`,
        });
      }
    }
    return r;
  }
}

export interface PushReport {
  expected: number;
  delivered: number;
  lost: number;
  doubled: number;
  outOfOrder: number;
  problems: Anomaly[];
}

export interface TopicReport {
  seen: number;
  reportedLost: number;
  silentlyLost: number;
  redelivered: number;
  problems: Anomaly[];
}

/** `1-4,7,9-10` for a sorted list of integers (keeps failure messages short). */
export function compact(values: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < values.length;) {
    let j = i;
    while (j + 1 < values.length && values[j + 1] === values[j]! + 1) j++;
    parts.push(i === j ? `${values[i]}` : `${values[i]}-${values[j]}`);
    i = j + 1;
  }
  return parts.length > 12 ? `${parts.slice(0, 12).join(',')},… (${values.length} in all)` : parts.join(',');
}
