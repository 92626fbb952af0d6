import { inflateSync } from 'node:zlib';
import type { Knex } from 'knex';
import { dlqName } from '../../src/mats/MatsWire.ts';
import type { PrivateRabbitMq } from '../../harness/privateServices.ts';
import type { TestBroker } from '../../harness/transports.ts';
import { ChaosIds } from './chaosEndpoints.ts';

/** Rows of a table. */
export async function countRows(knex: Knex, table: string): Promise<number> {
  const row = (await knex(table).count({ n: '*' }).first()) as { n: number | string } | undefined;
  return Number(row?.n ?? 0);
}

/**
 * The topic log against the publishes: each answered publish (`pub-<client>-<n>` trace ids) must be in the log
 * exactly once. Returns the trace ids logged more than once and the answered ones missing.
 */
export async function topicLogCheck(
  knex: Knex,
  topicId: string,
  answered: ReadonlySet<string>,
): Promise<{ doubled: string[]; missing: string[] }> {
  const rows = await knex('mats_socket_topic_log')
    .where({ topic_id: topicId })
    .select<{ trace_id: string }[]>('trace_id');
  const counts = new Map<string, number>();
  for (const r of rows) counts.set(r.trace_id, (counts.get(r.trace_id) ?? 0) + 1);
  return {
    doubled: [...counts].filter(([, n]) => n > 1).map(([t]) => t),
    missing: [...answered].filter((t) => !counts.has(t)),
  };
}

/** The store's leftovers after the settle: outboxes must be empty, inboxes bounded. */
export interface StoreLeftovers {
  matsSocketOutbox: number;
  matsOutbox: number;
  matsSocketInbox: number;
  matsInbox: number;
  matsSocketDlq: number;
}

export async function storeLeftovers(knex: Knex): Promise<StoreLeftovers> {
  return {
    matsSocketOutbox: await countRows(knex, 'mats_socket_outbox'),
    matsOutbox: await countRows(knex, 'mats_outbox'),
    matsSocketInbox: await countRows(knex, 'mats_socket_inbox'),
    matsInbox: await countRows(knex, 'mats_inbox'),
    matsSocketDlq: await countRows(knex, 'mats_socket_dlq'),
  };
}

/** Messages in the run's broker dead-letter queues (`DLQ.<prefix>...`), by queue, from `rabbitmqctl`. */
export async function brokerDeadLetters(
  rabbit: PrivateRabbitMq,
  prefix: string,
): Promise<Map<string, number>> {
  const stdout = await rabbit.ctl('list_queues', '--no-table-headers', 'name', 'messages');
  const result = new Map<string, number>();
  for (const line of stdout.split('\n')) {
    const [name, messages] = line.trim().split(/\s+/);
    if (name?.startsWith(`DLQ.${prefix}`)) result.set(name, Number(messages));
  }
  return result;
}

/** The poison queue's name. */
export function poisonDlq(prefix: string): string {
  return dlqName(prefix, ChaosIds.poison);
}

/**
 * The Mats message ids of the dead letters of each poison request (by its trace id) in the poison dead-letter queue
 * (drained: the run's queues are deleted afterwards anyway). Two entries with one id: the same message
 * dead-lettered twice; two ids: the message was sent twice.
 */
export async function poisonDeadLetters(
  broker: TestBroker,
  traceIds: readonly string[],
): Promise<Map<string, string[]>> {
  const found = new Map<string, string[]>(traceIds.map((t) => [t, []]));
  for (const m of await broker.drainQueue(poisonDlq(broker.prefix), 1000)) {
    const raw = m.properties.contentEncoding === 'deflate' ? inflateSync(m.body) : m.body;
    const body = raw.toString('utf8');
    for (const t of traceIds) if (body.includes(t)) found.get(t)!.push(m.properties.messageId);
  }
  return found;
}
