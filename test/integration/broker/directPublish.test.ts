import { expect } from 'chai';
import * as amqp from 'amqplib';
import { directPublisher, encodePublishesDirectly } from '../../../src/broker/directPublish.ts';
import { requireService, serviceUrls } from '../../../harness/services.ts';
import { uniqueId } from './transportTestUtil.ts';

// The unit tests prove the bytes; this proves the installed amqplib still has the internals both shortcuts hook
// into (else the transport quietly falls back to amqplib's slower path), and that RabbitMQ takes what they send.
describe('directPublish on a real amqplib connection [RabbitMQ]', function () {
  let model: amqp.ChannelModel;

  before(async function () {
    await requireService(this, 'rabbitmq');
    model = await amqp.connect(serviceUrls.rabbitmq);
  });

  after(async () => {
    await model?.close();
  });

  it('hooks in, and a message published through it arrives with every property and header', async () => {
    expect(encodePublishesDirectly(model), 'connection internals').to.equal(true);
    const ch = await model.createConfirmChannel();
    const publish = directPublisher(ch);
    expect(publish, 'channel internals').to.not.equal(undefined);
    const queue = `test.direct.${uniqueId()}`;
    await ch.assertQueue(queue, { exclusive: true });
    const headers = {
      mats_TraceId: 'trace-ü',
      mats_IA: true,
      mats_Expires: 1_765_000_000_123,
      ratio: 0.25,
      n: -3,
    };
    const confirmed = new Promise<void>((resolve, reject) =>
      publish!(
        '',
        queue,
        Buffer.from('{"v":1}'),
        {
          messageId: 'm-1',
          persistent: true,
          mandatory: true,
          contentType: 'application/json',
          expiration: '60000',
          timestamp: 1_765_000_000,
          appId: 'App;1.0',
          type: 'REQUEST',
          headers,
        },
        (err) => (err ? reject(err instanceof Error ? err : new Error('not confirmed')) : resolve()),
      ),
    );
    await confirmed;
    const got = await ch.get(queue, { noAck: true });
    expect(got).to.not.equal(false);
    const m = got as amqp.GetMessage;
    expect(m.content.toString()).to.equal('{"v":1}');
    expect(m.properties).to.deep.include({
      messageId: 'm-1',
      deliveryMode: 2,
      contentType: 'application/json',
      expiration: '60000',
      timestamp: 1_765_000_000,
      appId: 'App;1.0',
      type: 'REQUEST',
    });
    expect(m.properties.headers).to.deep.equal(headers);
    await ch.close();
  });
});
