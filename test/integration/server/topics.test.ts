import { expect } from 'chai';
import { RawClient } from '../../helpers/rawClient.ts';
import { testAuth } from '../../../harness/startTestCluster.ts';
import { connectSession, describeEachServerEnv } from './serverTestKit.ts';

let topicCounter = 0;
const newTopic = (): string => `Test.topic.${Date.now()}.${++topicCounter}`;

describeEachServerEnv('MatsSocketServer topics (8.12, BR-1 replay)', { nodes: 2 }, (ctx) => {
  const node = (i = 0) => ctx().cluster.nodes[i]!;

  it('SUB → SUB_OK; SUB to a refused topic → SUB_NO_AUTH', async () => {
    const { client } = await connectSession(node().url);
    const topic = newTopic();
    client.send([
      { t: 'SUB', eid: topic },
      { t: 'SUB', eid: 'Test.noAuth.secret' },
    ]);
    expect(await client.nextOfType('SUB_OK')).to.deep.equal({ t: 'SUB_OK', eid: topic });
    expect(await client.nextOfType('SUB_NO_AUTH')).to.deep.equal({
      t: 'SUB_NO_AUTH',
      eid: 'Test.noAuth.secret',
    });
    await client.close(4000, 'done');
  });

  it('SUB is live before a later SEND of the same frame is dispatched (publish inside the handler)', async () => {
    const topic = newTopic();
    const client = await RawClient.connect(node().url);
    await client.hello(testAuth('standard'), { extra: [{ t: 'SUB', eid: topic }] });
    client.send([
      { t: 'SUB', eid: `${topic}.b` },
      { t: 'SEND', eid: 'Test.publishInHandler', tid: 'p', cmid: 1, msg: `${topic}.b` },
    ]);
    const pub = await client.nextOfType('PUB');
    expect(pub).to.include({ eid: `${topic}.b`, tid: 'pubInHandler' });
    expect(pub.msg).to.deep.equal({ n: 1 });
    expect(pub.smid).to.match(/^[A-Za-z0-9]{6}\.1$/);
    await client.close(4000, 'done');
  });

  it('a publish on any node reaches the subscribers on every node; UNSUB stops delivery', async () => {
    const topic = newTopic();
    const a = (await connectSession(node(0).url)).client;
    const b = (await connectSession(node(1).url)).client;
    a.send([{ t: 'SUB', eid: topic }]);
    b.send([{ t: 'SUB', eid: topic }]);
    await a.nextOfType('SUB_OK');
    await b.nextOfType('SUB_OK');
    await node(1).server.publish('from-outside', topic, { hello: 'world' });
    expect((await a.nextOfType('PUB')).msg).to.deep.equal({ hello: 'world' });
    expect((await b.nextOfType('PUB')).msg).to.deep.equal({ hello: 'world' });
    b.send([{ t: 'UNSUB', eid: topic }]);
    b.send([{ t: 'PING', x: 'barrier' }]);
    await b.nextOfType('PONG');
    await node(0).server.publish('second', topic, 2);
    expect((await a.nextOfType('PUB')).msg).to.equal(2);
    b.send([{ t: 'PING', x: 'barrier2' }]);
    await b.nextOfType('PONG');
    expect(b.pending.filter((e) => e.t === 'PUB')).to.have.length(0);
    await a.close(4000, 'done');
    await b.close(4000, 'done');
  });

  it('SUB with the smid of the last seen PUB replays the later ones in order (BR-1)', async () => {
    const topic = newTopic();
    const first = (await connectSession(node(0).url)).client;
    first.send([{ t: 'SUB', eid: topic }]);
    await first.nextOfType('SUB_OK');
    await node(0).server.publish('r1', topic, 1);
    const pub1 = await first.nextOfType('PUB');
    await first.close(4000, 'done');
    for (const n of [2, 3, 4]) await node(1).server.publish(`r${n}`, topic, n);
    const again = await RawClient.connect(node(1).url);
    await again.hello(testAuth('standard'), { extra: [{ t: 'SUB', eid: topic, smid: pub1.smid }] });
    expect(await again.nextOfType('SUB_OK')).to.deep.equal({ t: 'SUB_OK', eid: topic });
    const replayed = [
      await again.nextOfType('PUB'),
      await again.nextOfType('PUB'),
      await again.nextOfType('PUB'),
    ];
    expect(replayed.map((p) => p.msg)).to.deep.equal([2, 3, 4]);
    expect(replayed.map((p) => p.tid)).to.deep.equal(['r2', 'r3', 'r4']);
    // Live delivery continues after the replay.
    await node(0).server.publish('r5', topic, 5);
    expect((await again.nextOfType('PUB')).msg).to.equal(5);
    await again.close(4000, 'done');
  });

  it('SUB with the last smid → SUB_OK and nothing replayed; unknown epoch or bad smid → SUB_LOST', async () => {
    const topic = newTopic();
    await node(0).server.publish('x', topic, 1);
    const { client } = await connectSession(node(0).url);
    client.send([{ t: 'SUB', eid: topic }]);
    await client.nextOfType('SUB_OK');
    await node(0).server.publish('y', topic, 2);
    const last = await client.nextOfType('PUB');
    client.send([
      { t: 'UNSUB', eid: topic },
      { t: 'SUB', eid: topic, smid: last.smid },
    ]);
    expect(await client.nextOfType('SUB_OK')).to.deep.equal({ t: 'SUB_OK', eid: topic });
    client.send([
      { t: 'UNSUB', eid: topic },
      { t: 'SUB', eid: topic, smid: 'zzzzzz.1' },
    ]);
    expect(await client.nextOfType('SUB_LOST')).to.deep.equal({ t: 'SUB_LOST', eid: topic });
    client.send([
      { t: 'UNSUB', eid: topic },
      { t: 'SUB', eid: topic, smid: 'not-a-replay-smid' },
    ]);
    expect(await client.nextOfType('SUB_LOST')).to.deep.equal({ t: 'SUB_LOST', eid: topic });
    client.send([{ t: 'PING', x: 'b' }]);
    await client.nextOfType('PONG');
    expect(client.pending.filter((e) => e.t === 'PUB')).to.have.length(0);
    await client.close(4000, 'done');
  });

  it('PUB carries debug per the session S2C options', async () => {
    const topic = newTopic();
    const { client } = await connectSession(node(0).url, 'enableAllDebugOptions');
    client.send([
      { t: 'SUB', eid: topic },
      { t: 'SEND', eid: 'Test.ignoreInIncomingHandler', tid: 'rd', cmid: 1, rd: 2 },
    ]);
    await client.nextOfType('SUB_OK');
    await client.nextOfType('ACK');
    await node(1).server.publish('dbg', topic, 'm');
    const pub = await client.nextOfType('PUB');
    expect(pub.debug).to.deep.equal({ resd: 2, smcnn: node(1).nodeName, mscnn: node(0).nodeName });
    await client.close(4000, 'done');
  });
});
