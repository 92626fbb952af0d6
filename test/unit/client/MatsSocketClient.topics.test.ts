import { expect } from 'chai';
import type { MessageEvent, SubscriptionEvent } from '../../../src/client/clientEvents.ts';
import { establish, nextEvent, useHarness } from './harness.ts';

describe('MatsSocketClient: topics', () => {
  const h = useHarness();

  it('a subscription starts a session and goes in the HELLO frame; SUB results become events', async () => {
    const server = await h.server();
    const client = h.client(server);
    const events: SubscriptionEvent[] = [];
    client.on('subscription', (e) => events.push(e));
    client.subscribe('Test.topic', () => {});
    client.subscribe('Test.noAuth.secret', () => {});
    const connection = await server.nextConnection();
    const frame = await connection.nextFrame();
    expect(frame.map((e) => e.t)).to.deep.equal(['HELLO', 'SUB', 'SUB']);
    expect(frame.slice(1)).to.deep.equal([
      { t: 'SUB', eid: 'Test.topic' },
      { t: 'SUB', eid: 'Test.noAuth.secret' },
    ]);
    connection.send(
      { t: 'WELCOME', sid: 'S' },
      { t: 'SUB_OK', eid: 'Test.topic' },
      { t: 'SUB_NO_AUTH', eid: 'Test.noAuth.secret' },
      { t: 'SUB_LOST', eid: 'Test.topic' },
    );
    await nextEvent(client, 'subscription', (e) => e.type === 'LOST_MESSAGES');
    expect(events).to.deep.equal([
      { type: 'OK', topicId: 'Test.topic' },
      { type: 'NOT_AUTHORIZED', topicId: 'Test.noAuth.secret' },
      { type: 'LOST_MESSAGES', topicId: 'Test.topic' },
    ]);
  });

  it('delivers PUBs to every listener and re-subscribes with the last smid seen on every HELLO', async () => {
    const server = await h.server();
    const client = h.client(server);
    const first: MessageEvent[] = [];
    const second: unknown[] = [];
    client.subscribe('Test.topic', (e) => first.push(e));
    client.subscribe('Test.topic', (e) => second.push(e.data));
    const { connection } = await establish(server, 'SID1');
    expect(connection.all('SUB')).to.deep.equal([{ t: 'SUB', eid: 'Test.topic' }]);
    connection.send(
      { t: 'PUB', eid: 'Test.topic', smid: 'k3J9Qa.41', tid: 'p1', msg: 'one' },
      { t: 'PUB', eid: 'Test.topic', smid: 'k3J9Qa.42', tid: 'p2', msg: 'two' },
    );
    await new Promise<void>((resolve) => client.subscribe('Test.topic', () => resolve()));
    expect(first.map((e) => [e.type, e.data, e.messageId, e.traceId])).to.deep.equal([
      ['PUB', 'one', 'k3J9Qa.41', 'p1'],
      ['PUB', 'two', 'k3J9Qa.42', 'p2'],
    ]);
    expect(second).to.deep.equal(['one', 'two']);

    await connection.terminate();
    const again = await server.nextConnection();
    const frame = await again.nextFrame();
    expect(frame).to.deep.equal([frame[0], { t: 'SUB', eid: 'Test.topic', smid: 'k3J9Qa.42' }]);
    expect(frame[0]).to.include({ t: 'HELLO', sid: 'SID1' });
  });

  it('a dynamic subscription is sent at once in its own frame, and re-sent with its smid after a reconnect', async () => {
    const server = await h.server();
    const client = h.client(server);
    void client.send('Test.single', 't', {});
    const { connection } = await establish(server, 'SID');
    await connection.next('SEND');
    const received: unknown[] = [];
    client.subscribe('Dyn.topic', (e) => received.push(e.data));
    const sub = await connection.next('SUB');
    expect(connection.frameOf(sub)).to.deep.equal([{ t: 'SUB', eid: 'Dyn.topic' }]);
    connection.send({ t: 'PUB', eid: 'Dyn.topic', smid: 'e.1', tid: 't', msg: 1 });
    // A second listener on the same topic sends nothing.
    client.subscribe('Dyn.topic', () => {});
    await connection.terminate();
    const again = await server.nextConnection();
    expect((await again.nextFrame())[1]).to.deep.equal({ t: 'SUB', eid: 'Dyn.topic', smid: 'e.1' });
    expect(received).to.deep.equal([1]);
    expect(connection.all('SUB')).to.have.length(1);
  });

  it('sends UNSUB when the last listener goes, and not before', async () => {
    const server = await h.server();
    const client = h.client(server);
    const a = (): void => {};
    const b = (): void => {};
    const offA = client.subscribe('Test.topic', a);
    client.subscribe('Test.topic', b);
    const { connection } = await establish(server);
    offA();
    client.unsubscribe('Test.topic', b);
    expect(await connection.next('UNSUB')).to.deep.equal({ t: 'UNSUB', eid: 'Test.topic' });
    expect(connection.all('UNSUB')).to.have.length(1);
  });

  it('rejects reserved topic names', async () => {
    const server = await h.server();
    const client = h.client(server);
    expect(() => client.subscribe('MatsSocket.x', () => {}))
      .to.throw()
      .with.property('code', 'CLIENT_ILLEGAL_ARGUMENT');
    expect(() => client.subscribe('!x', () => {}))
      .to.throw()
      .with.property('code', 'CLIENT_ILLEGAL_ARGUMENT');
  });
});
