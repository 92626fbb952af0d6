import * as amqp from 'amqplib';
import { amqpSocketOf, coalesceWrites } from '../../src/broker/coalesceWrites.ts';
import { runPhase, type PhaseResult } from './Driver.ts';

const QUORUM = { durable: true, arguments: { 'x-queue-type': 'quorum' } };

/**
 * The ceiling: a raw amqplib request/reply loop with `inflight` round trips outstanding: confirm channel,
 * persistent messages, manual acks, `noDelay`, quorum queues (as the Mats layer uses), and the transport's write
 * coalescing (a tick's frames in one `writev`: without it the loop is ~20 % slower, so it would not be the
 * fastest). The "server" consumes a request, publishes the reply, waits for its confirm, then acks.
 */
export async function rawAmqpPhase(
  url: string,
  prefix: string,
  inflight: number,
  warmupMs: number,
  measureMs: number,
): Promise<PhaseResult> {
  const requests = `${prefix}raw${inflight}.requests`;
  const replies = `${prefix}raw${inflight}.replies`;
  const opts = (n: string) => ({ noDelay: true, clientProperties: { connection_name: `${prefix}${n}` } });
  const pubConn = await amqp.connect(url, opts('raw-pub'));
  const conConn = await amqp.connect(url, opts('raw-con'));
  for (const m of [pubConn, conConn]) {
    const socket = amqpSocketOf(m);
    if (!socket)
      throw new Error("cannot coalesce the raw loop's writes: amqplib has no socket where expected");
    coalesceWrites(socket);
  }
  try {
    const pub = await pubConn.createConfirmChannel();
    const serverCh = await conConn.createChannel();
    const clientCh = await conConn.createChannel();
    await pub.assertQueue(requests, QUORUM);
    await pub.assertQueue(replies, QUORUM);
    await serverCh.prefetch(inflight);
    await clientCh.prefetch(inflight);
    const waiting = new Map<string, () => void>();
    let seq = 0;
    const body = (id: string) => Buffer.from(JSON.stringify({ id, data: { string: 'x'.repeat(100) } }));
    await serverCh.consume(requests, (msg) => {
      if (!msg) return;
      const id = msg.properties.messageId as string;
      pub.publish('', replies, body(id), { persistent: true, mandatory: true, messageId: id }, (err) => {
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
    const result = await runPhase(
      'raw amqplib',
      inflight,
      () =>
        new Promise<void>((resolve, reject) => {
          const id = `r${++seq}`;
          waiting.set(id, resolve);
          pub.publish('', requests, body(id), { persistent: true, mandatory: true, messageId: id }, (err) => {
            if (err) reject(new Error(`raw request not confirmed: ${String(err)}`));
          });
        }),
      warmupMs,
      measureMs,
    );
    await pub.deleteQueue(requests);
    await pub.deleteQueue(replies);
    return result;
  } finally {
    await pubConn.close().catch(() => undefined);
    await conConn.close().catch(() => undefined);
  }
}
