/**
 * The Socket.IO peer's backend process: consumes the request queue (`prefetch` at a time, manual acks), publishes
 * `{ id, node }` for a request `{ id }` to its `replyTo` queue (persistent, confirm channel, same
 * `correlationId`) and acks the request when the reply is confirmed; an unconfirmed reply requeues the request.
 * Argument: {@link PeerConfig} as JSON; prints `READY`.
 */
import * as amqp from 'amqplib';
import { answerCounterRequests } from '../../harness/nodeCounters.ts';
import { PEER_QUEUE_OPTIONS, peerQueueNames, type PeerConfig } from './peerQueues.ts';

const config = JSON.parse(process.argv[2] ?? '') as PeerConfig;
const { requests } = peerQueueNames(config.prefix);
const counters = { brokerPublishes: 0 };

const connection = await amqp.connect(config.amqpUrl, {
  noDelay: true,
  clientProperties: { connection_name: `${config.prefix}peer-backend` },
});
const channel = await connection.createConfirmChannel();
await channel.assertQueue(requests, PEER_QUEUE_OPTIONS);
await channel.prefetch(config.prefetch);
await channel.consume(requests, (msg) => {
  if (!msg) return;
  const request = JSON.parse(msg.content.toString()) as { id: string };
  counters.brokerPublishes++;
  channel.publish(
    '',
    msg.properties.replyTo as string,
    Buffer.from(JSON.stringify({ id: request.id, node: 'peer-backend' })),
    {
      persistent: true,
      correlationId: msg.properties.correlationId as string,
      contentType: 'application/json',
    },
    (err) => {
      if (err) channel.nack(msg, false, true);
      else channel.ack(msg);
    },
  );
});
answerCounterRequests(counters);
process.stdout.write('READY\n');
