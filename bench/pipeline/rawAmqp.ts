import * as amqp from 'amqplib';
import type { AmqpPublishOptions } from '../../src/broker/amqpProperties.ts';
import { amqpSocketOf, coalesceWrites } from '../../src/broker/coalesceWrites.ts';
import { directPublisher, encodePublishesDirectly } from '../../src/broker/directPublish.ts';
import { runPhase, type PhaseResult } from './Driver.ts';

const QUORUM = { durable: true, arguments: { 'x-queue-type': 'quorum' } };

/** Where and how a raw loop runs. */
export interface RawLoopOptions {
  url: string;
  /** Queue and connection name prefix of this bench run. */
  prefix: string;
  /** Distinguishes this loop's two queues from other loops of the run. */
  name: string;
  /** Prefetch of both consumers: the most round trips that will be in flight. */
  inFlight: number;
  /** The body of a request or reply with message id `id`. */
  body(id: string): Buffer;
  /** Properties and headers every message carries besides id, persistence and `mandatory`. */
  extra?: (id: string) => Partial<AmqpPublishOptions>;
  /** Coalesce each connection's writes per tick, as the AMQP transport does (`coalesceWrites.ts`). @default true */
  coalesce?: boolean;
  /** Publish through the transport's publish path and frame encoder (`directPublish.ts`). @default true */
  directPublish?: boolean;
}

/**
 * A running raw loop: `request(onReply, onError)` sends one request; `onReply` runs when its reply arrived,
 * `onError` when the broker did not confirm the request (no reply will come).
 */
export interface RawLoop {
  request(onReply: () => void, onError: (error: Error) => void): void;
  /** Deletes the queues and closes the connections. */
  close(): Promise<void>;
}

/** The request and reply queues of the raw loop `name` of a bench run with queue prefix `prefix`. */
export function rawQueueNames(prefix: string, name: string): [requests: string, replies: string] {
  return [`${prefix}raw${name}.requests`, `${prefix}raw${name}.replies`];
}

/**
 * The ceiling the benches compare with: a raw amqplib request/reply loop, the fastest correct one we know. One
 * connection for publishing and one for consuming (`noDelay`), a confirm channel, persistent messages, manual acks,
 * quorum queues (as the Mats layer uses), and what the AMQP transport does to amqplib: write coalescing (a tick's
 * frames in one `writev`) and its own publish encoder; without them the loop is slower, so it would not be the
 * fastest. The "server" consumes a request, publishes the reply, waits for its confirm, then acks the request; the
 * "client" consumes the reply and acks it.
 */
export async function openRawLoop(o: RawLoopOptions): Promise<RawLoop> {
  const [requests, replies] = rawQueueNames(o.prefix, o.name);
  const opts = (n: string) => ({ noDelay: true, clientProperties: { connection_name: `${o.prefix}${n}` } });
  const pubConn = await amqp.connect(o.url, opts('raw-pub'));
  const conConn = await amqp.connect(o.url, opts('raw-con'));
  const close = async (): Promise<void> => {
    await pubConn.close().catch(() => undefined);
    await conConn.close().catch(() => undefined);
  };
  try {
    if (o.coalesce ?? true) {
      for (const m of [pubConn, conConn]) {
        const socket = amqpSocketOf(m);
        if (!socket)
          throw new Error("cannot coalesce the raw loop's writes: amqplib has no socket where expected");
        coalesceWrites(socket);
      }
    }
    const direct = o.directPublish ?? true;
    if (direct && !encodePublishesDirectly(pubConn)) {
      throw new Error(
        "cannot give the raw loop the transport's publish encoder: amqplib internals not found",
      );
    }
    const pub = await pubConn.createConfirmChannel();
    const publish = (direct ? directPublisher(pub) : undefined) ?? pub.publish.bind(pub);
    const serverCh = await conConn.createChannel();
    const clientCh = await conConn.createChannel();
    await pub.assertQueue(requests, QUORUM);
    await pub.assertQueue(replies, QUORUM);
    await serverCh.prefetch(o.inFlight);
    await clientCh.prefetch(o.inFlight);
    const options = (id: string): AmqpPublishOptions => ({
      persistent: true,
      mandatory: true,
      messageId: id,
      headers: {},
      ...o.extra?.(id),
    });
    const waiting = new Map<string, () => void>();
    let seq = 0;
    await serverCh.consume(requests, (msg) => {
      if (!msg) return;
      const id = msg.properties.messageId as string;
      publish('', replies, o.body(id), options(id), (err) => {
        if (err) serverCh.reject(msg, true);
        else serverCh.ack(msg);
      });
    });
    await clientCh.consume(replies, (msg) => {
      if (!msg) return;
      clientCh.ack(msg);
      const id = msg.properties.messageId as string;
      const done = waiting.get(id);
      waiting.delete(id);
      done?.();
    });
    return {
      request(onReply, onError) {
        const id = `r${++seq}`;
        waiting.set(id, onReply);
        publish('', requests, o.body(id), options(id), (err) => {
          if (!err) return;
          waiting.delete(id);
          onError(new Error('raw request not confirmed', { cause: err }));
        });
      },
      async close() {
        try {
          await pub.deleteQueue(requests);
          await pub.deleteQueue(replies);
        } finally {
          await close();
        }
      },
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** The pipeline bench's raw amqplib phase: {@link openRawLoop} with `inflight` round trips outstanding. */
export async function rawAmqpPhase(
  url: string,
  prefix: string,
  inflight: number,
  warmupMs: number,
  measureMs: number,
): Promise<PhaseResult> {
  const loop = await openRawLoop({
    url,
    prefix,
    name: String(inflight),
    inFlight: inflight,
    body: (id) => Buffer.from(JSON.stringify({ id, data: { string: 'x'.repeat(100) } })),
  });
  try {
    return await runPhase(
      'raw amqplib',
      inflight,
      () => new Promise<void>((resolve, reject) => loop.request(resolve, reject)),
      warmupMs,
      measureMs,
    );
  } finally {
    await loop.close();
  }
}
