import { once } from 'node:events';
import { expect } from 'chai';
import { connectSession, describeEachServerEnv } from './serverTestKit.ts';

let topicCounter = 0;
const newTopic = (): string => `Test.continuity.${Date.now()}.${++topicCounter}`;

/**
 * A broadcast is best effort: while a node's broker connection is down, publishes broadcast meanwhile do not reach
 * it, though they are in the replay log. A subscriber whose WebSocket stayed up must still get every one, in order,
 * without resubscribing.
 */
describeEachServerEnv('Topic publishes missed during a broker outage', { nodes: 2 }, (ctx) => {
  const node = (i: number) => ctx().cluster.nodes[i]!;
  const transportOf = (i: number) => node(i).factory.options.transport;

  async function subscriber(topic: string) {
    const { client } = await connectSession(node(1).url);
    client.send([{ t: 'SUB', eid: topic }]);
    await client.nextOfType('SUB_OK');
    return client;
  }

  async function dropBroker(i: number): Promise<void> {
    const lost = once(transportOf(i), 'transport:disconnected', { signal: AbortSignal.timeout(20_000) });
    await ctx().cluster.broker.dropConnections(node(i).nodeName);
    await lost;
  }

  const back = (i: number) =>
    once(transportOf(i), 'transport:connected', { signal: AbortSignal.timeout(20_000) });

  /**
   * m1 reaches the subscriber on node 1; then node 0 loses its broker connection and publishes m2: the log row
   * commits, the broadcast cannot go out. Resolves once node 0 is connected again.
   */
  async function m2FailsOnThePublisher() {
    const topic = newTopic();
    const client = await subscriber(topic);
    await node(0).server.publish('m1', topic, 1);
    expect((await client.nextOfType('PUB')).msg).to.equal(1);
    const reconnected = back(0);
    await dropBroker(0);
    const failed = await node(0)
      .server.publish('m2', topic, 2)
      .then(
        () => false,
        () => true,
      );
    expect(failed, 'the broadcast of m2 failed while the broker connection was down').to.equal(true);
    await reconnected;
    return { topic, client };
  }

  it('the subscriber node reads what it missed at the tail once its broker connection is back', async () => {
    const topic = newTopic();
    const client = await subscriber(topic);
    await node(0).server.publish('m1', topic, 1);
    expect((await client.nextOfType('PUB')).msg).to.equal(1);
    const reconnected = back(1);
    await dropBroker(1);
    // Broadcast while node 1 has no topic queue: it never sees this one.
    await node(0).server.publish('m2', topic, 2);
    await reconnected;
    expect((await client.nextOfType('PUB', 10_000)).msg).to.equal(2);
    await node(0).server.publish('m3', topic, 3);
    expect((await client.nextOfType('PUB')).msg).to.equal(3);
    await client.close(4000, 'done');
  });

  it('a publish whose broadcast failed is filled in from the log before the next one, once', async () => {
    const { topic, client } = await m2FailsOnThePublisher();
    await node(0).server.publish('m3', topic, 3);
    const pubs = [await client.nextOfType('PUB', 10_000), await client.nextOfType('PUB', 10_000)];
    expect(pubs.map((p) => p.msg)).to.deep.equal([2, 3]);
    client.send([{ t: 'PING', x: 'barrier' }]);
    await client.nextOfType('PONG');
    expect(client.pending.filter((e) => e.t === 'PUB')).to.have.length(0);
    await client.close(4000, 'done');
  });

  it('a publish whose broadcast failed is sent again once the publisher is back, with no later publish', async () => {
    const { client } = await m2FailsOnThePublisher();
    // Node 1 kept its broker connection (no catch-up there), and nothing else is published.
    expect((await client.nextOfType('PUB', 10_000)).msg).to.equal(2);
    await client.close(4000, 'done');
  });
});
