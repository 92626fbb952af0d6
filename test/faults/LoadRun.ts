import { expect } from 'chai';
import { WebSocket } from 'ws';
import type { MatsSocketClientOptions } from '../../src/client/clientOptions.ts';
import { MatsSocketClient } from '../../src/client/MatsSocketClient.ts';
import type { WebSocketConstructor } from '../../src/client/WebSocketLike.ts';
import { fastClientTimings } from '../helpers/clientKit.ts';
import type { EchoReply } from '../../harness/faultEndpoints.ts';

/** Per-request accounting of a run: every request has a unique id; replies are counted per id on three levels. */
export interface LoadAccounting {
  /** Requests issued. */
  sent: number;
  /** Requests whose promise resolved with the right id. */
  resolved: number;
  /** Ids whose promise rejected or never settled within the bound (lost). */
  lost: string[];
  /** Ids whose reply carried another id (mixed up). */
  mismatched: string[];
  /** Ids for which the client saw more than one `initiation:processed` event. */
  duplicateOutcomes: string[];
  /** Ids for which the wire carried RESOLVE/REJECT envelopes with more than one distinct smid (two replies). */
  duplicateWireReplies: string[];
  /** Wire-level RESOLVE/REJECT envelopes received in total (including legitimate redeliveries of one smid). */
  wireReplies: number;
  /** Replies per node that ran the backend. */
  perNode: Record<string, number>;
  /** RETRY envelopes the clients received. */
  wireRetries: number;
  /** Request round-trip times, ms. */
  latenciesMs: number[];
  /**
   * Per lost id whose reply did reach the client later (after its timeout): ms from sending to that reply. A lost id
   * missing here never got a reply on the wire. Tells a slow request from a lost one.
   */
  lateReplyMs: Record<string, number>;
}

/** Counts the RESOLVE/REJECT envelopes on the wire, per tid, by distinct smid (via a wrapped `ws` WebSocket). */
class WireCounter {
  readonly smidsPerTid = new Map<string, Set<string>>();
  /** When the first reply per tid was received (`performance.now()`). */
  readonly firstReplyAt = new Map<string, number>();
  total = 0;
  retries = 0;

  constructorFor(): WebSocketConstructor {
    const count = (e: Record<string, unknown>): void => this.#count(e);
    return class CountingWebSocket extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols);
        this.addEventListener('message', (event) => {
          if (typeof event.data !== 'string') return;
          let frame: unknown;
          try {
            frame = JSON.parse(event.data);
          } catch {
            return;
          }
          if (!Array.isArray(frame)) return;
          for (const e of frame as Record<string, unknown>[]) count(e);
        });
      }
    };
  }

  #count(e: Record<string, unknown>): void {
    if (e.t === 'RETRY') this.retries++;
    if ((e.t !== 'RESOLVE' && e.t !== 'REJECT') || typeof e.tid !== 'string') return;
    this.total++;
    let set = this.smidsPerTid.get(e.tid);
    if (!set) this.smidsPerTid.set(e.tid, (set = new Set()));
    set.add(String(e.smid));
    if (!this.firstReplyAt.has(e.tid)) this.firstReplyAt.set(e.tid, performance.now());
  }
}

export interface LoadRunOptions {
  /** Server URLs every client gets (failover order). */
  urls: readonly string[];
  /** Number of clients (sessions). */
  clients: number;
  /** Requests outstanding per client. */
  inflightPerClient: number;
  /** MatsSocket endpoint to request. @default 'Fault.echo' */
  endpointId?: string;
  /** Request timeout, ms (a request not answered by then counts as lost). @default 30000 */
  requestTimeoutMs?: number;
  /** Id prefix (unique per run). */
  idPrefix: string;
  /** An authorization value. */
  authorization: string;
  /** Client option overrides. */
  client?: Partial<MatsSocketClientOptions>;
}

/**
 * Clients that keep `inflightPerClient` requests outstanding each, with unique ids, until {@link stop}; then
 * {@link finish} waits for every outstanding request and returns the {@link LoadAccounting}.
 */
export class LoadRun {
  readonly clients: MatsSocketClient[] = [];
  readonly #options: LoadRunOptions;
  readonly #wire = new WireCounter();
  readonly #outcomes = new Map<string, number>();
  readonly #sentAt = new Map<string, number>();
  readonly #pending = new Set<Promise<void>>();
  readonly #acc: LoadAccounting;
  #stopped = false;
  #seq = 0;

  constructor(options: LoadRunOptions) {
    this.#options = options;
    this.#acc = {
      sent: 0,
      resolved: 0,
      lost: [],
      mismatched: [],
      duplicateOutcomes: [],
      duplicateWireReplies: [],
      wireReplies: 0,
      wireRetries: 0,
      perNode: {},
      latenciesMs: [],
      lateReplyMs: {},
    };
    for (let i = 0; i < options.clients; i++) {
      const client = new MatsSocketClient({
        appName: 'FaultTest',
        appVersion: '1.0.0',
        urls: options.urls,
        webSocket: this.#wire.constructorFor(),
        ...fastClientTimings,
        requestTimeoutMs: options.requestTimeoutMs ?? 30_000,
        ...options.client,
      });
      client.setCurrentAuthorization(options.authorization);
      client.on('initiation:processed', (e) => {
        if (e.kind === 'REQUEST') this.#outcomes.set(e.traceId, (this.#outcomes.get(e.traceId) ?? 0) + 1);
      });
      this.clients.push(client);
    }
  }

  /** Requests answered so far. */
  get resolved(): number {
    return this.#acc.resolved;
  }

  /** Starts every client's request loop. */
  start(): void {
    for (const client of this.clients) {
      for (let k = 0; k < this.#options.inflightPerClient; k++) this.#next(client);
    }
  }

  #next(client: MatsSocketClient): void {
    if (this.#stopped) return;
    const id = `${this.#options.idPrefix}-${++this.#seq}`;
    this.#acc.sent++;
    const started = performance.now();
    this.#sentAt.set(id, started);
    const p = client
      .request<EchoReply>(this.#options.endpointId ?? 'Fault.echo', id, { id })
      .then(
        (reply) => {
          this.#acc.latenciesMs.push(performance.now() - started);
          if (reply.data.id !== id) this.#acc.mismatched.push(id);
          else this.#acc.resolved++;
          this.#acc.perNode[reply.data.node] = (this.#acc.perNode[reply.data.node] ?? 0) + 1;
        },
        (err: unknown) => {
          this.#acc.lost.push(id);
          // Why, for the failure message: a lost request is a bug to find, not a number.
          console.log(
            `      lost ${id}: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`,
          );
        },
      )
      .finally(() => {
        this.#pending.delete(p);
        this.#next(client);
      });
    this.#pending.add(p);
  }

  /** Stops issuing new requests. */
  stop(): void {
    this.#stopped = true;
  }

  /** Stops, waits for every outstanding request (each bounded by the request timeout), closes the clients. */
  async finish(): Promise<LoadAccounting> {
    this.stop();
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
    // Late duplicates would arrive within a few batching rounds: a final barrier request per client.
    await Promise.allSettled(
      this.clients.map((c) =>
        c.request(this.#options.endpointId ?? 'Fault.echo', 'barrier', { id: 'barrier' }),
      ),
    );
    await this.close();
    for (const [tid, smids] of this.#wire.smidsPerTid) {
      if (smids.size > 1 && tid !== 'barrier') this.#acc.duplicateWireReplies.push(tid);
    }
    for (const [tid, n] of this.#outcomes)
      if (n > 1 && tid !== 'barrier') this.#acc.duplicateOutcomes.push(tid);
    for (const id of this.#acc.lost) {
      const at = this.#wire.firstReplyAt.get(id);
      if (at !== undefined) this.#acc.lateReplyMs[id] = Math.round(at - this.#sentAt.get(id)!);
    }
    this.#acc.wireReplies = this.#wire.total;
    this.#acc.wireRetries = this.#wire.retries;
    return this.#acc;
  }

  /** Closes every client (idempotent enough for `after` hooks). */
  async close(): Promise<void> {
    this.stop();
    await Promise.allSettled(this.clients.map((c) => c.close('load run over')));
  }
}

/** Percentile of a sample (nearest rank), ms. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Resolves when `condition` holds, polling every 10 ms, bounded. */
export async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** One line of figures for the test output (the report quotes them). */
export function summary(what: string, acc: LoadAccounting): string {
  return (
    `      [${what}] sent ${acc.sent}, resolved ${acc.resolved}, lost ${acc.lost.length}, ` +
    `duplicated ${acc.duplicateOutcomes.length + acc.duplicateWireReplies.length}, RETRYs ${acc.wireRetries}, ` +
    `p50 ${percentile(acc.latenciesMs, 50).toFixed(1)} ms, p99 ${percentile(acc.latenciesMs, 99).toFixed(1)} ms, ` +
    `per node ${JSON.stringify(acc.perNode)}`
  );
}

/** The accounting of a run in which every request must be answered exactly once. */
export function expectExactlyOnce(acc: LoadAccounting): void {
  expect(acc.lost, 'lost requests').to.deep.equal([]);
  expect(acc.mismatched, 'mixed-up replies').to.deep.equal([]);
  expect(acc.duplicateOutcomes, 'duplicate outcomes').to.deep.equal([]);
  expect(acc.duplicateWireReplies, 'duplicate replies on the wire').to.deep.equal([]);
  expect(acc.resolved).to.equal(acc.sent);
}
