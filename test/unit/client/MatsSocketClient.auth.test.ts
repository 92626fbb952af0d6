import { expect } from 'chai';
import { ReceivedError } from '../../../src/client/clientErrors.ts';
import type { AuthorizationRequiredEvent } from '../../../src/client/clientEvents.ts';
import { establish, expectRejection, nextEvent, quietPeriod, useHarness } from './harness.ts';

describe('MatsSocketClient: authorization', () => {
  const h = useHarness();

  it('asks once for a missing authorization, holds the message, and connects when it is set', async () => {
    const server = await h.server();
    const client = h.client(server, {}, null);
    const asked: AuthorizationRequiredEvent[] = [];
    client.setAuthorizationExpiredCallback((e) => asked.push(e));
    const sent = client.send('Test.single', 't', {});
    void client.send('Test.single', 't2', {});
    client.flush();
    await quietPeriod(40);
    expect(asked).to.deep.equal([{ type: 'NOT_PRESENT' }]);
    expect(server.connections).to.have.length(0);
    client.setCurrentAuthorization('DummyAuth:late:-1');
    const { hello, connection } = await establish(server);
    expect(hello.auth).to.equal('DummyAuth:late:-1');
    connection.send({ t: 'ACK', ids: ['0', '1'] });
    expect((await sent).type).to.equal('ACK');
    expect(asked).to.have.length(1);
  });

  it('asks for a new authorization when the current one is within roomForLatency of expiry', async () => {
    const server = await h.server();
    const client = h.client(server, {}, null);
    const expiresAt = Date.now() + 1000;
    client.setCurrentAuthorization('DummyAuth:u:1', expiresAt, 5000);
    const asked = new Promise<AuthorizationRequiredEvent>((resolve) =>
      client.setAuthorizationExpiredCallback(resolve),
    );
    void client.send('Test.single', 't', {});
    expect(await asked).to.deep.equal({ type: 'EXPIRED', currentExpiresAt: expiresAt });
    client.setCurrentAuthorization('DummyAuth:u:2', Date.now() + 3_600_000, 5000);
    expect((await establish(server)).hello.auth).to.equal('DummyAuth:u:2');
  });

  it('closes the session locally (1008) when authorization is needed and no callback is set', async () => {
    const server = await h.server();
    const client = h.client(server, {}, null);
    const closed = nextEvent(client, 'session:closed');
    const sent = expectRejection(client.send('Test.single', 't', {}), ReceivedError, 'CLIENT_SESSION_CLOSED');
    const event = await closed;
    expect(event).to.include({ code: 1008, codeName: 'VIOLATED_POLICY', outstandingInitiations: 1 });
    const error = await sent;
    expect(error.event.type).to.equal('SESSION_CLOSED');
    expect(client.state).to.equal('NO_SESSION');
  });

  it('piggy-backs a changed authorization on the last envelope of the next frame', async () => {
    const server = await h.server();
    const client = h.client(server);
    void client.send('Test.single', 't', {});
    const { connection } = await establish(server);
    await connection.next('SEND');
    client.setCurrentAuthorization('DummyAuth:new:-1');
    void client.send('Test.single', 'a', {});
    void client.send('Test.single', 'b', {});
    const a = await connection.next((e) => e.t === 'SEND' && e.tid === 'a');
    expect(connection.frameOf(a).map((e) => e.auth)).to.deep.equal([undefined, 'DummyAuth:new:-1']);
  });

  it('on REAUTH: calls the callback once, holds messages, sends AUTH with the new value, then continues', async () => {
    const server = await h.server();
    const client = h.client(server);
    const asked: string[] = [];
    let renew: (() => void) | undefined;
    client.setAuthorizationExpiredCallback((e) => {
      asked.push(e.type);
      renew = () => client.setCurrentAuthorization('DummyAuth:fresh:-1');
    });
    const first = client.send('Test.single', 'held', {});
    const { connection } = await establish(server);
    const held = await connection.next('SEND');
    // The server holds the message and asks for new authorization.
    connection.send({ t: 'REAUTH' });
    connection.send({ t: 'REAUTH' });
    await quietPeriod(30);
    expect(asked).to.deep.equal(['REAUTHENTICATE']);
    // While waiting, new messages stay in the pipeline.
    const second = client.send('Test.single', 'waiting', {});
    client.flush();
    await quietPeriod(30);
    expect(connection.all('SEND')).to.have.length(1);
    renew!();
    const waiting = await connection.next((e) => e.t === 'SEND' && e.tid === 'waiting');
    expect(connection.frameOf(waiting)).to.deep.equal([
      { t: 'SEND', eid: 'Test.single', tid: 'waiting', cmid: '1', msg: {}, auth: 'DummyAuth:fresh:-1' },
    ]);
    connection.send({ t: 'ACK', ids: [held.cmid, '1'] });
    expect((await first).type).to.equal('ACK');
    expect((await second).type).to.equal('ACK');
    expect(asked).to.have.length(1);
  });

  it('on REAUTH with nothing queued: sends a bare AUTH frame', async () => {
    const server = await h.server();
    const client = h.client(server);
    client.setAuthorizationExpiredCallback(() =>
      setTimeout(() => client.setCurrentAuthorization('DummyAuth:x:-1'), 5),
    );
    void client.send('Test.single', 't', {});
    const { connection } = await establish(server);
    const send = await connection.next('SEND');
    connection.send({ t: 'ACK', cmid: send.cmid });
    await connection.next('ACK2');
    connection.send({ t: 'REAUTH' });
    const auth = await connection.next('AUTH');
    expect(connection.frameOf(auth)).to.deep.equal([{ t: 'AUTH', auth: 'DummyAuth:x:-1' }]);
  });
});
