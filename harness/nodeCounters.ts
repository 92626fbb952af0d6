import type { ChildProcess } from 'node:child_process';
import type { Knex } from 'knex';
import type { Transport } from '../src/broker/Transport.ts';

/**
 * What a node in a child process has sent to its database and broker since it started, for the benchmarks'
 * per-round-trip figures. Counted in the harness, around the library, so the library carries no bench-only code.
 */
export interface NodeCounters {
  /**
   * Round trips to the database: the statements the node's knex sent to the driver (knex `query` events: every
   * statement of a builder or `raw`, and every BEGIN/COMMIT/ROLLBACK of a transaction), except on MySQL/MariaDB a
   * transaction's BEGIN, its write-behind writes and its read-at-commit reads, which travel with the statement after
   * them
   * (`src/store/mysqlStatementFolding.ts`). With mysql2 and better-sqlite3 every other statement is one driver
   * call, so on MariaDB one network round trip.
   */
  dbRoundTrips: number;
  /** Messages handed to the transport's `publish` (queue and topic targets alike; a poke counts as one). */
  brokerPublishes: number;
}

/** The IPC request a parent sends for the counters, and the answer. */
interface CountersRequest {
  type: 'counters?';
  id: number;
}
interface CountersAnswer {
  type: 'counters';
  id: number;
  counters: unknown;
}

/**
 * Counts the statements `knex` sends and the messages `transport` publishes from now on. Install before the node
 * serves. The transport's `publish` is wrapped on the instance, so every caller (stages, outbox, pokes) is counted.
 */
export function countNodeWork(knex: Knex, transport: Transport): NodeCounters {
  const counters: NodeCounters = { dbRoundTrips: 0, brokerPublishes: 0 };
  const beginTravelsAlong = (knex.client as { config: Knex.Config }).config.client === 'mysql2';
  knex.on('query', (q: { sql?: string; options?: Record<string, unknown> }) => {
    const along =
      q.sql === 'BEGIN;' ||
      q.options?.matssocketWriteBehind === true ||
      q.options?.matssocketReadAtCommit === true;
    if (beginTravelsAlong && along) return;
    counters.dbRoundTrips++;
  });
  const publish = transport.publish.bind(transport);
  transport.publish = (messages) => {
    counters.brokerPublishes += messages.length;
    return publish(messages);
  };
  return counters;
}

/**
 * Answers a parent's IPC requests ({@link askCounters}) with a copy of `counters`, a live object of numbers;
 * no-op without an IPC channel.
 */
export function answerCounterRequests(counters: object): void {
  if (!process.send) return;
  process.on('message', (message: CountersRequest) => {
    if (message?.type !== 'counters?') return;
    const answer: CountersAnswer = { type: 'counters', id: message.id, counters: { ...counters } };
    process.send?.(answer);
  });
  // The channel must not keep a node alive that has otherwise stopped.
  process.channel?.unref();
}

let asked = 0;

/**
 * Asks `child` (spawned with an `ipc` stdio entry, answering with {@link answerCounterRequests}) for its
 * counters; rejects after `timeoutMs`.
 */
export function askCounters<T>(child: ChildProcess, timeoutMs = 5000): Promise<T> {
  const id = ++asked;
  return new Promise<T>((resolve, reject) => {
    const onMessage = (m: CountersAnswer): void => {
      if (m?.type !== 'counters' || m.id !== id) return;
      done();
      resolve(m.counters as T);
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`process ${child.pid} did not report its counters within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = (): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
    };
    child.on('message', onMessage);
    child.send({ type: 'counters?', id } satisfies CountersRequest, (error) => {
      if (!error) return;
      done();
      reject(error);
    });
  });
}
