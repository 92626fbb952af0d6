import * as amqp from 'amqplib';
import type { AmqpPublishOptions } from '../../src/broker/amqpProperties.ts';
import { amqpSocketOf, coalesceWrites } from '../../src/broker/coalesceWrites.ts';
import { directPublisher, encodePublishesDirectly } from '../../src/broker/directPublish.ts';
import { LoopDriver, type PhaseResult, type PhaseTiming } from './LoopDriver.ts';

/** What the raw loop runs against and with. */
export interface RawLoopConfig {
  url: string;
  /** Queue and connection name prefix of this bench run. */
  prefix: string;
  timing: PhaseTiming;
  /** The DTO each request and reply carries. */
  payload: unknown;
  /** Coalesce each connection's writes per tick, as the AMQP transport does (`coalesceWrites.ts`). */
  coalesce: boolean;
  /** Publish through the transport's publish path and frame encoder (`directPublish.ts`), not amqplib's. */
  directPublish: boolean;
}

const QUORUM = { durable: true, arguments: { 'x-queue-type': 'quorum' } };

/** What the Mats wire format adds to every message (section 4.1), for the raw+wire loop. */
function matsLikeProperties(id: string): Partial<AmqpPublishOptions> {
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
export async function rawPhase(config: RawLoopConfig, run: string, wire: boolean): Promise<PhaseResult> {
  const { url, prefix, payload, coalesce, directPublish } = config;
  const requests = `${prefix}raw${run}${wire ? 'w' : ''}.requests`;
  const replies = `${prefix}raw${run}${wire ? 'w' : ''}.replies`;
  const pubConn = await amqp.connect(url, {
    noDelay: true,
    clientProperties: { connection_name: `${prefix}raw-pub` },
  });
  const conConn = await amqp.connect(url, {
    noDelay: true,
    clientProperties: { connection_name: `${prefix}raw-con` },
  });
  if (coalesce) {
    for (const m of [pubConn, conConn]) {
      const socket = amqpSocketOf(m);
      if (!socket)
        throw new Error("cannot coalesce the raw loop's writes: amqplib has no socket where expected");
      coalesceWrites(socket);
    }
  }
  if (directPublish && !encodePublishesDirectly(pubConn)) {
    throw new Error("cannot give the raw loop the transport's publish encoder: amqplib internals not found");
  }
  try {
    const pub = await pubConn.createConfirmChannel();
    // The fastest way to publish with amqplib we know, as the AMQP transport does (see directPublish.ts).
    const publish = (directPublish ? directPublisher(pub) : undefined) ?? pub.publish.bind(pub);
    const serverCh = await conConn.createChannel();
    const clientCh = await conConn.createChannel();
    await pub.assertQueue(requests, QUORUM);
    await pub.assertQueue(replies, QUORUM);
    await serverCh.prefetch(config.timing.inFlight);
    await clientCh.prefetch(config.timing.inFlight);
    const waiting = new Map<string, () => void>();
    let seq = 0;
    // A Mats envelope around the bench payload is about 600 bytes (591 measured).
    const pad = wire ? 'p'.repeat(480) : '';
    const body = (id: string) => Buffer.from(JSON.stringify({ id, data: payload, pad }));
    const extra = (id: string): Partial<AmqpPublishOptions> => (wire ? matsLikeProperties(id) : {});
    await serverCh.consume(requests, (msg) => {
      if (!msg) return;
      const id = msg.properties.messageId as string;
      publish(
        '',
        replies,
        body(id),
        { persistent: true, mandatory: true, messageId: id, headers: {}, ...extra(id) },
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
    const driver = new LoopDriver(config.timing, (onReply) => {
      const id = `r${++seq}`;
      waiting.set(id, onReply);
      publish(
        '',
        requests,
        body(id),
        { persistent: true, mandatory: true, messageId: id, headers: {}, ...extra(id) },
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
