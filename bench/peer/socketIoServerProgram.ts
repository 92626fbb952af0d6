/**
 * The Socket.IO peer's server process: what a Node developer builds instead of MatsSocket. Each client's
 * `request` event is published to a durable request queue (persistent, on a confirm channel, `replyTo` this
 * server's reply queue, `correlationId`); the reply consumed from the reply queue answers the client through the
 * event's ack callback. A publish the broker does not confirm is answered `{ error }` at once. Nothing is stored:
 * a reply that arrives while its client is disconnected, or after this process restarted, is dropped (acked).
 * Argument: {@link PeerConfig} as JSON; prints `READY <ws url>`.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as amqp from 'amqplib';
import { Server } from 'socket.io';
import { answerCounterRequests } from '../../harness/nodeCounters.ts';
import { PEER_QUEUE_OPTIONS, peerQueueNames, type PeerConfig } from './peerQueues.ts';

type Ack = (reply: unknown) => void;

const config = JSON.parse(process.argv[2] ?? '') as PeerConfig;
const { requests, replies } = peerQueueNames(config.prefix);
const counters = { brokerPublishes: 0 };

// Nagle off, as a developer who measured would set it; amqplib's default leaves it on.
const connection = await amqp.connect(config.amqpUrl, {
  noDelay: true,
  clientProperties: { connection_name: `${config.prefix}peer-server` },
});
const publishChannel = await connection.createConfirmChannel();
await publishChannel.assertQueue(requests, PEER_QUEUE_OPTIONS);
await publishChannel.assertQueue(replies, PEER_QUEUE_OPTIONS);

const waiting = new Map<string, Ack>();
const replyChannel = await connection.createChannel();
await replyChannel.prefetch(config.prefetch);
await replyChannel.consume(replies, (msg) => {
  if (!msg) return;
  replyChannel.ack(msg);
  const id = msg.properties.correlationId as string;
  const ack = waiting.get(id);
  waiting.delete(id);
  ack?.(JSON.parse(msg.content.toString()));
});

const http = createServer();
const io = new Server(http, { transports: ['websocket'], serveClient: false });
// One user per connection, as the MatsSocket sessions have; the bench's users carry just their name.
io.use((socket, next) => {
  const user = (socket.handshake.auth as { user?: unknown }).user;
  if (typeof user === 'string' && user.length > 0) next();
  else next(new Error('unauthorized'));
});
let seq = 0;
io.on('connection', (socket) => {
  socket.on('request', (payload: unknown, ack: Ack) => {
    const id = `${process.pid}.${++seq}`;
    waiting.set(id, ack);
    counters.brokerPublishes++;
    publishChannel.publish(
      '',
      requests,
      Buffer.from(JSON.stringify(payload)),
      { persistent: true, correlationId: id, replyTo: replies, contentType: 'application/json' },
      (err) => {
        if (!err) return;
        waiting.delete(id);
        ack({ error: 'request not confirmed by the broker' });
      },
    );
  });
});
await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
answerCounterRequests(counters);
process.stdout.write(`READY ws://127.0.0.1:${(http.address() as AddressInfo).port}\n`);
