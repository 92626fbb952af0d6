// A backend for the gateway of examples/gateway/matssocket.yaml, in plain Node with amqplib and nothing of
// matssocket-ts: it speaks the Mats wire format of docs/mats-wire-format.md directly, as a backend in any language
// would. It serves the Mats endpoints the configuration forwards to (Orders.placeOrder, Orders.quote,
// Orders.cancelOrder), replies, and pushes an order event to the client through the terminator's endpoint.
//
//   node examples/gateway/backend.js
//
// Environment: MATSSOCKET_BROKER_URL (default amqp://guest:guest@127.0.0.1:5672) and MATSSOCKET_BROKER_QUEUE_PREFIX
// (default mats.), the same variables that override the gateway's broker.url and broker.queuePrefix.
/* global process, Buffer, console */ // Node globals: this file is plain JavaScript, outside the type-checked sources.
import { hostname } from 'node:os';
import { inflateSync } from 'node:zlib';
import * as amqp from 'amqplib';

const url = process.env.MATSSOCKET_BROKER_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const prefix = process.env.MATSSOCKET_BROKER_QUEUE_PREFIX ?? 'mats.';
const APP = { app: 'OrdersBackend', ver: '1.0.0', node: `${hostname()}-${process.pid}` };
/** docs/mats-wire-format.md §5: a message whose attempt number exceeds this is dead-lettered. */
const MAX_ATTEMPTS = 6;
/** The terminator endpoint of the configuration (terminators[0].from): pushes to the client's Shop.orderEvents. */
const ORDER_EVENTS = 'Shop.toClient.orderEvents';

let nextOrderId = 1;

/**
 * The endpoints: each gets the request's data and the string sideloads, and returns its reply plus any messages
 * to send besides ({ to, data }: a SEND to that Mats endpoint).
 */
const endpoints = {
  'Orders.placeOrder': (data, sideloads) => {
    const orderId = `o-${process.pid}-${nextOrderId++}`;
    const reply = { orderId, item: data?.item ?? null, quantity: data?.quantity ?? 1, status: 'placed' };
    // A forwarded message carries the client's session id, so the backend can push to that session later.
    const sessionId = sideloads.matsSocketSessionId;
    const sends = sessionId
      ? [{ to: ORDER_EVENTS, data: { sessionId, message: { orderId, status: 'confirmed' } } }]
      : [];
    return { reply, sends };
  },
  'Orders.quote': (data) => ({ reply: { item: data?.item ?? null, price: 42 }, sends: [] }),
  'Orders.cancelOrder': (data) => ({ reply: { orderId: data?.orderId ?? null, cancelled: true }, sends: [] }),
};

const connection = await amqp.connect(url);
const channel = await connection.createConfirmChannel();
await channel.prefetch(10);
const QUORUM = { durable: true, arguments: { 'x-queue-type': 'quorum' } };

/** Publishes and waits for the broker's confirm; a returned (unroutable) message is an error. */
async function publish(queue, envelope, extraProperties = {}, extraHeaders = {}) {
  await channel.assertQueue(queue, QUORUM);
  let returned = false;
  const onReturn = (msg) => {
    if (msg.properties.messageId === envelope.id) returned = true;
  };
  channel.on('return', onReturn);
  try {
    await new Promise((resolve, reject) =>
      channel.publish(
        '',
        queue,
        Buffer.from(JSON.stringify(envelope)),
        {
          messageId: envelope.id,
          contentType: 'application/json',
          deliveryMode: envelope.np ? 1 : 2,
          mandatory: true,
          timestamp: Math.floor(Date.now() / 1000),
          appId: APP.app,
          type: envelope.call.type,
          ...extraProperties,
          headers: {
            mats_TraceId: envelope.traceId,
            mats_MsgId: envelope.id,
            mats_CallType: envelope.call.type,
            mats_From: envelope.call.from,
            mats_To: envelope.call.to.id,
            ...extraHeaders,
          },
        },
        (err) => (err ? reject(err) : resolve()),
      ),
    );
  } finally {
    channel.off('return', onReturn);
  }
  if (returned) throw new Error(`unroutable: no queue ${queue}`);
}

/** The queue a message to a `queue` channel goes to (docs/mats-wire-format.md §4.2). */
function queueOf(channelId, interactive) {
  return `${prefix}${channelId}${interactive ? ':i' : ''}`;
}

async function handle(endpointId, msg) {
  const headers = msg.properties.headers ?? {};
  const expires = headers.mats_Expires;
  if (typeof expires === 'number' && expires < Date.now()) return; // expired hop: dropped (acked)
  const body = msg.properties.contentEncoding === 'deflate' ? inflateSync(msg.content) : msg.content;
  const incoming = JSON.parse(body.toString('utf8'));
  if (incoming.v !== 1) throw Object.assign(new Error(`envelope version ${incoming.v}`), { refuse: true });
  const started = Date.now();
  const { reply, sends } = endpoints[endpointId](incoming.data ?? null, incoming.sl?.s ?? {});
  // Flags are sticky for the flow; a TTL is the hop's, less the time spent here (docs/mats-wire-format.md §5).
  const flags = {
    ...(incoming.np ? { np: true } : {}),
    ...(incoming.ia ? { ia: true } : {}),
    ...(incoming.na ? { na: true } : {}),
  };
  const ttl = incoming.np && incoming.ttl ? Math.max(1, incoming.ttl - (Date.now() - started)) : undefined;
  const ttlProperties = ttl ? { expiration: String(ttl) } : {};
  const ttlHeaders = ttl ? { mats_Expires: Date.now() + ttl } : {};
  const from = { ...APP, ts: Date.now() };
  const common = {
    v: 1,
    traceId: incoming.traceId,
    init: incoming.init,
    from,
    ...flags,
    ...(ttl ? { ttl: incoming.ttl } : {}),
  };
  // Ids derive from the incoming id, so a redelivery sends the same ids and the gateway de-duplicates them.
  const height = incoming.stack.length;
  if (height > 0) {
    const target = incoming.stack[height - 1];
    const replyEnvelope = {
      ...common,
      flowId: incoming.flowId,
      id: `${incoming.id}_r`,
      parentId: incoming.id,
      callNo: incoming.callNo + 1,
      totalCallNo: incoming.totalCallNo + 1,
      call: { type: 'REPLY', from: endpointId, to: target },
      stack: incoming.stack.slice(0, -1),
      states: incoming.states.filter((s) => s.h < height),
      ...(incoming.tp ? { tp: incoming.tp } : {}),
      data: reply,
    };
    await publish(queueOf(target.id, incoming.ia), replyEnvelope, ttlProperties, ttlHeaders);
  }
  for (const [i, send] of sends.entries()) {
    const flowId = `${incoming.id}_s${i}`;
    const sendEnvelope = {
      ...common,
      flowId,
      id: `${flowId}_1`,
      parentId: incoming.id,
      callNo: 1,
      totalCallNo: incoming.totalCallNo + 1,
      call: { type: 'SEND', from: endpointId, to: { id: send.to, kind: 'queue' } },
      stack: [],
      states: [],
      data: send.data,
    };
    await publish(queueOf(send.to, incoming.ia), sendEnvelope, ttlProperties, ttlHeaders);
  }
  console.log(`backend handled ${endpointId} ${JSON.stringify(incoming.traceId)}`);
}

/** docs/mats-wire-format.md §8: the original, unchanged but for the dead-letter headers, to DLQ.<queue>. */
async function deadLetter(queue, msg, err, attempt) {
  const dlq = `DLQ.${queue.replace(/:i$/, '')}`;
  await channel.assertQueue(dlq, QUORUM);
  await new Promise((resolve, reject) =>
    channel.sendToQueue(
      dlq,
      msg.content,
      {
        ...msg.properties,
        expiration: undefined,
        headers: {
          ...msg.properties.headers,
          mats_dlq_Exception: String(err?.stack ?? err).slice(0, 4000),
          mats_dlq_Refused: String(Boolean(err?.refuse)),
          mats_dlq_DeliveryCount: attempt,
          mats_dlq_AppAndVersion: `${APP.app};${APP.ver}`,
          mats_dlq_Node: APP.node,
          mats_dlq_Timestamp: Date.now(),
        },
      },
      (e) => (e ? reject(e) : resolve()),
    ),
  );
}

for (const endpointId of Object.keys(endpoints)) {
  // Forwards from the gateway are interactive and arrive on the ':i' queue; other senders use the plain one.
  for (const queue of [queueOf(endpointId, false), queueOf(endpointId, true)]) {
    await channel.assertQueue(queue, QUORUM);
    await channel.consume(queue, (msg) => {
      if (!msg) return;
      const attempt = Number(msg.properties.headers?.['x-delivery-count'] ?? 0) + 1;
      handle(endpointId, msg)
        .then(() => channel.ack(msg))
        .catch(async (err) => {
          if (err instanceof SyntaxError || err?.refuse || attempt >= MAX_ATTEMPTS) {
            await deadLetter(queue, msg, err, attempt);
            channel.ack(msg);
          } else {
            console.error(`backend: ${endpointId} failed (attempt ${attempt}), retrying: ${err}`);
            channel.reject(msg, true); // never nack: it would not count the attempt
          }
        })
        .catch((err) => console.error(`backend: could not settle a message of ${queue}: ${err}`));
    });
  }
}
console.log(`backend ready on ${url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@')} (queue prefix ${prefix})`);

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    connection.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}
