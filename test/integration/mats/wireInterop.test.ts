import { inflateSync } from 'node:zlib';
import * as amqp from 'amqplib';
import { expect } from 'chai';
import { MatsFactory } from '../../../src/mats/MatsFactory.ts';
import { requireService, serviceUrls } from '../../../harness/services.ts';
import { createTestBroker, testTransportKinds, type TestBroker } from '../../../harness/transports.ts';

interface Reply {
  body: Record<string, unknown>;
  properties: amqp.MessageProperties;
}

/**
 * A "backend in another language": raw amqplib, following docs/mats-wire-format.md section 7 only, requests a real
 * Mats endpoint and consumes the reply.
 */
(testTransportKinds().includes('rabbitmq') ? describe : describe.skip)(
  'Mats wire format: raw AMQP interop [RabbitMQ]',
  function () {
    let broker: TestBroker;
    let factory: MatsFactory;
    let conn: amqp.ChannelModel;
    let ch: amqp.ConfirmChannel;
    const replies: Reply[] = [];
    let waiter: (() => void) | undefined;

    before(async function () {
      this.timeout(30_000);
      await requireService(this, 'rabbitmq');
      broker = await createTestBroker('rabbitmq');
      const prefix = broker.prefix;
      factory = new MatsFactory({
        appName: 'InteropSvc',
        appVersion: '1',
        nodeName: 'interop',
        transport: broker.createTransport('interop'),
        queuePrefix: prefix,
      });
      factory.single<{ n: number; s: string }, { n: number; s: string }>('Svc.double', (ctx, inc) => ({
        n: inc.n * 2,
        s: `${inc.s}!${ctx.getString('hint') ?? ''}`,
      }));
      expect(await factory.waitForReceiving(10_000)).to.equal(true);

      conn = await amqp.connect(serviceUrls.rabbitmq, {
        noDelay: true,
        clientProperties: { connection_name: `${prefix}raw` },
      });
      ch = await conn.createConfirmChannel();
      for (const q of ['Foreign.replies', 'Foreign.replies:i', 'Svc.double', 'Svc.double:i']) {
        await ch.assertQueue(`${prefix}${q}`, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
      }
      // Replies to interactive flows come to the ":i" twin of the reply queue.
      for (const q of ['Foreign.replies', 'Foreign.replies:i']) {
        await ch.consume(`${prefix}${q}`, (msg) => {
          if (!msg) return;
          const raw = msg.properties.contentEncoding === 'deflate' ? inflateSync(msg.content) : msg.content;
          replies.push({
            body: JSON.parse(raw.toString('utf8')) as Record<string, unknown>,
            properties: msg.properties,
          });
          ch.ack(msg);
          waiter?.();
        });
      }
    });

    after(async function () {
      this.timeout(30_000);
      await ch?.close().catch(() => undefined);
      await conn?.close().catch(() => undefined);
      await factory?.stop(1000);
      await broker?.close();
    });

    async function request(n: number, s: string, extra: Record<string, unknown> = {}): Promise<Reply> {
      const now = Date.now();
      const id = `m_Foreign${String(n).padStart(4, '0')}_T${now.toString(36)}`;
      const envelope = {
        v: 1,
        flowId: id,
        id: `${id}_1`,
        traceId: `Foreign.call[${n}]`,
        init: { app: 'ForeignApp', ver: '1', node: 'host-a', id: 'Foreign.client', ts: now },
        from: { app: 'ForeignApp', ver: '1', node: 'host-a', ts: now },
        callNo: 1,
        totalCallNo: 1,
        call: { type: 'REQUEST', from: 'Foreign.client', to: { id: 'Svc.double', kind: 'queue' } },
        stack: [{ id: 'Foreign.replies', kind: 'queue' }],
        states: [{ h: 0, sto: { correlationId: `c-${n}` } }],
        keepTrace: 'COMPACT',
        dlqCount: 0,
        data: { n, s },
        ...extra,
      };
      const before = replies.length;
      const arrived = new Promise<void>((resolve) => {
        waiter = () => {
          if (replies.length > before) resolve();
        };
      });
      let returned = false;
      ch.once('return', () => (returned = true));
      await new Promise<void>((resolve, reject) =>
        ch.publish(
          '',
          `${broker.prefix}Svc.double${extra.ia ? ':i' : ''}`,
          Buffer.from(JSON.stringify(envelope)),
          { messageId: envelope.id, contentType: 'application/json', deliveryMode: 2, mandatory: true },
          (err) => (err ? reject(err as Error) : resolve()),
        ),
      );
      expect(returned).to.equal(false);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        arrived,
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('no reply')), 10_000))),
      ]).finally(() => clearTimeout(timer));
      return replies[replies.length - 1]!;
    }

    it('a raw AMQP client requests a Mats endpoint and consumes its reply (docs/mats-wire-format.md section 7)', async () => {
      const r = await request(21, 'hi', { sl: { s: { hint: 'side' } } });
      expect(r.body.v).to.equal(1);
      expect(r.body.traceId).to.equal('Foreign.call[21]');
      expect(r.body.call).to.deep.equal({
        type: 'REPLY',
        from: 'Svc.double',
        to: { id: 'Foreign.replies', kind: 'queue' },
      });
      expect(r.body.stack).to.deep.equal([]);
      expect(r.body.states).to.deep.equal([{ h: 0, sto: { correlationId: 'c-21' } }]);
      expect(r.body.data).to.deep.equal({ n: 42, s: 'hi!side' });
      expect(r.body).to.include({ callNo: 2, totalCallNo: 2 });
      expect(r.body.parentId).to.match(/^m_Foreign0021_T[0-9a-z]+_1$/);
      expect(r.properties.messageId).to.equal(r.body.id);
      expect(r.properties.headers?.mats_CallType).to.equal('REPLY');
      expect(r.properties.headers?.mats_TraceId).to.equal('Foreign.call[21]');
    });

    it('large replies arrive deflated; interactive requests use the :i queues', async () => {
      const big = 'z'.repeat(5000);
      const r = await request(7, big, { ia: true });
      expect(r.properties.contentEncoding).to.equal('deflate');
      expect((r.body.data as { s: string }).s).to.equal(`${big}!`);
      expect(r.body.ia).to.equal(true);
      expect(replies.filter((x) => x.body.ia === true)).to.have.length(1);
      expect(r.properties.headers?.mats_IA).to.equal('true');
    });
  },
);
