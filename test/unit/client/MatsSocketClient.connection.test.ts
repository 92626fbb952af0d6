import { expect } from 'chai';
import { ReceivedError, ReplyError } from '../../../src/client/clientErrors.ts';
import type { ConnectionEvent, SessionClosedEvent } from '../../../src/client/clientEvents.ts';
import { establish, expectRejection, nextEvent, quietPeriod, useHarness } from './harness.ts';

describe('MatsSocketClient: connection and session lifecycle', () => {
  const h = useHarness();

  describe('lost connection', () => {
    it('reconnects to the NEXT URL with back-off, resumes with HELLO{sid}, resends outstanding messages once each', async () => {
      const [a, b] = [await h.server(), await h.server()];
      const client = h.client([a, b], { reconnectDelayMinMs: 40, reconnectDelayMaxMs: 60 });
      const events: ConnectionEvent[] = [];
      client.on('connection', (e) => events.push(e));
      const sent = client.send('Test.single', 's', { n: 1 });
      const requested = client.request('Test.slow', 'r', { n: 2 });
      let settled = 0;
      void sent.then(() => settled++);
      void requested.then(() => settled++);
      const { connection: first } = await establish(a, 'SessionIdResume1');
      const [send, request] = [await first.next('SEND'), await first.next('REQUEST')];

      const lostAt = Date.now();
      await first.terminate();
      const lost = await nextEvent(client, 'connection', (e) => e.type === 'LOST_CONNECTION');
      expect(lost).to.include({ type: 'LOST_CONNECTION', code: 1006, url: a.url });
      expect((lost as { reconnectInMs: number }).reconnectInMs).to.be.within(40, 60);
      expect(client.state).to.equal('DISCONNECTED');
      // A message enqueued while disconnected goes out after the new HELLO, and is not resent on top of that.
      const during = client.send('Test.single', 'during', {});

      const second = await b.nextConnection();
      expect(Date.now() - lostAt).to.be.at.least(35);
      const hello = await second.welcome('SessionIdResume1', 'reconnected - existing in store');
      expect(hello.sid).to.equal('SessionIdResume1');
      const established = await nextEvent(client, 'connection', (e) => e.type === 'SESSION_ESTABLISHED');
      expect(established).to.include({ url: b.url, resumed: true });

      const resentSend = await second.next((e) => e.t === 'SEND' && e.cmid === send.cmid);
      const resentRequest = await second.next('REQUEST');
      expect(resentSend).to.deep.equal(send);
      expect(resentRequest).to.deep.equal(request);
      // Each resend is its own frame ("one flush at a time").
      expect(second.frameOf(resentSend)).to.have.length(1);
      expect(second.frameOf(resentRequest)).to.have.length(1);
      const duringSend = await second.next((e) => e.t === 'SEND' && e.tid === 'during');

      second.send({ t: 'ACK', ids: [send.cmid, (duringSend as { cmid: string }).cmid] });
      second.send({ t: 'RESOLVE', cmid: request.cmid, tid: 'r', smid: 'X', msg: 'done' });
      // A duplicate of the reply (as after another resume) completes nothing twice.
      second.send({ t: 'RESOLVE', cmid: request.cmid, tid: 'r', smid: 'X', msg: 'done' });
      expect((await sent).type).to.equal('ACK');
      expect((await requested).data).to.equal('done');
      await during;
      await quietPeriod(30);
      expect(settled).to.equal(2);
      expect(second.all('SEND').filter((e) => e.tid === 'during')).to.have.length(1);
      expect(events.map((e) => e.type)).to.include.members(['CONNECTING', 'CONNECTED', 'LOST_CONNECTION']);
    });

    it('does not resend messages it sent on the same connection before WELCOME', async () => {
      const server = await h.server();
      const client = h.client(server);
      void client.send('Test.single', 't', {});
      const { connection } = await establish(server);
      await connection.next('SEND');
      await nextEvent(client, 'connection', (e) => e.type === 'SESSION_ESTABLISHED');
      connection.send({ t: 'ACK', cmid: '0' });
      await connection.next('ACK2');
      expect(connection.all('SEND')).to.have.length(1);
    });

    it('fails over to the next URL at once when a URL refuses connections', async () => {
      const dead = await h.server();
      const deadUrl = dead.url;
      await dead.close();
      const live = await h.server();
      const client = h.client([deadUrl, live.url]);
      const waiting = nextEvent(client, 'connection', (e) => e.type === 'WAITING');
      void client.send('Test.single', 't', {});
      expect(await waiting).to.include({ url: deadUrl, nextAttemptInMs: 0 });
      await establish(live);
      expect(client.currentUrl).to.equal(live.url);
    });

    it('a server that does not select the matssocket subprotocol counts as a failed attempt', async () => {
      const { FakeServer } = await import('../../helpers/fakeServer.ts');
      const wrong = await FakeServer.start({ selectSubprotocol: false });
      h.servers.push(wrong);
      const client = h.client(wrong, { maxConnectionAttempts: 2 });
      const closed = nextEvent(client, 'session:closed');
      const sent = expectRejection(
        client.send('Test.single', 't', {}),
        ReceivedError,
        'CLIENT_SESSION_CLOSED',
      );
      expect((await closed).code).to.equal(1008);
      await sent;
    });

    it('backs off between failed attempts and gives up after maxConnectionAttempts (session closed, 1008)', async () => {
      const dead = await h.server();
      const url = dead.url;
      await dead.close();
      const client = h.client([url], {
        maxConnectionAttempts: 4,
        connectBackoff: { initialMs: 20, factor: 2, maxMs: 1000, jitter: 0 },
      });
      const waits: number[] = [];
      client.on('connection', (e) => {
        if (e.type === 'WAITING') waits.push(e.nextAttemptInMs);
      });
      const closed = nextEvent(client, 'session:closed');
      const reply = expectRejection(
        client.request('Test.single', 't', {}),
        ReplyError,
        'CLIENT_SESSION_CLOSED',
      );
      const event: SessionClosedEvent = await closed;
      expect(event).to.include({ code: 1008, codeName: 'VIOLATED_POLICY', outstandingInitiations: 1 });
      expect(event.reason).to.match(/Too many consecutive connection attempts \[4\]/);
      expect(waits).to.deep.equal([20, 40, 80]);
      await reply;
    });

    it('reconnects after 1012 and after 1001 from the server', async () => {
      const server = await h.server();
      const client = h.client(server);
      void client.send('Test.single', 't', {});
      const { connection } = await establish(server, 'SID');
      await connection.close(1012, 'From Server: Server instance is going down, please reconnect.');
      const second = await server.nextConnection();
      expect((await second.welcome('SID')).sid).to.equal('SID');
      await second.close(1001, 'no HELLO in time');
      const third = await server.nextConnection();
      expect((await third.welcome('SID')).sid).to.equal('SID');
    });
  });

  describe('server close codes', () => {
    it('4003: lost connection without reconnecting, until a new message is enqueued', async () => {
      const server = await h.server();
      const client = h.client(server);
      void client.send('Test.single', 't', {});
      const { connection } = await establish(server, 'SID');
      connection.send({ t: 'ACK', cmid: '0' });
      await connection.next('ACK2');
      const lostEvent = nextEvent(client, 'connection', (e) => e.type === 'LOST_CONNECTION');
      await connection.close(4003, 'Cannot have two MatsSockets with the same MatsSocketSessionId');
      const lost = await lostEvent;
      expect(lost).to.include({ code: 4003 });
      expect(lost).to.not.have.property('reconnectInMs');
      await quietPeriod(150); // several times the reconnect delay of 20-40 ms
      expect(server.connections).to.have.length(1);
      expect(client.state).to.equal('DISCONNECTED');
      const sent = client.send('Test.single', 'after', {});
      const second = await server.nextConnection();
      expect((await second.welcome('SID')).sid).to.equal('SID');
      const send = await second.next('SEND');
      second.send({ t: 'ACK', cmid: send.cmid });
      expect((await sent).type).to.equal('ACK');
    });

    for (const [code, name] of [
      [4001, 'SESSION_LOST'],
      [1008, 'VIOLATED_POLICY'],
      [4000, 'CLOSE_SESSION'],
      [1011, 'UNEXPECTED_CONDITION'],
      [4004, 'MATS_SOCKET_PROTOCOL_ERROR'],
    ] as const) {
      it(`${code}: closes the session, rejects everything outstanding with SESSION_CLOSED, fires session:closed`, async () => {
        const server = await h.server();
        const client = h.client(server);
        const sent = expectRejection(
          client.send('Test.single', 's', {}),
          ReceivedError,
          'CLIENT_SESSION_CLOSED',
        );
        const requested = expectRejection(
          client.request('Test.slow', 'r', {}),
          ReplyError,
          'CLIENT_SESSION_CLOSED',
        );
        const { connection } = await establish(server, 'SID');
        await connection.next('REQUEST');
        const closed = nextEvent(client, 'session:closed');
        await connection.close(code, `closed with ${code}`);
        const event = await closed;
        expect(event).to.deep.equal({
          code,
          codeName: name,
          reason: `closed with ${code}`,
          outstandingInitiations: 2,
        });
        await sent;
        const error = await requested;
        expect(error.event.type).to.equal('SESSION_CLOSED');
        expect(client.state).to.equal('NO_SESSION');
        expect(client.sessionId).to.equal(undefined);
        await quietPeriod(100);
        expect(server.connections).to.have.length(1);
      });
    }

    it('after a server-side session close, the next message starts a new session (HELLO without sid)', async () => {
      const server = await h.server();
      const client = h.client(server);
      void client.send('Test.single', 's', {}).catch(() => {});
      const { connection } = await establish(server, 'OLD');
      await connection.close(4000, 'Server Side: bye');
      void client.send('Test.single', 'again', {});
      const second = await server.nextConnection();
      const hello = await second.welcome('NEW');
      expect(hello).to.not.have.property('sid');
      // cmids continue across sessions, as in the official client.
      expect(await second.next('SEND')).to.include({ tid: 'again', cmid: '1', rd: 0 });
    });
  });

  describe('#close()', () => {
    it('closes with 4000 "From client: <reason>", rejects outstanding work, and does not fire session:closed', async () => {
      const server = await h.server();
      const client = h.client(server);
      let sessionClosedEvents = 0;
      client.on('session:closed', () => sessionClosedEvents++);
      const requested = expectRejection(
        client.request('Test.slow', 'r', {}),
        ReplyError,
        'CLIENT_SESSION_CLOSED',
      );
      const { connection } = await establish(server);
      await connection.next('REQUEST');
      const closedEvent = nextEvent(client, 'connection', (e) => e.type === 'SESSION_CLOSED');
      const first = client.close('user logged out');
      expect(client.close('again')).to.equal(first);
      expect(await closedEvent).to.include({ code: 4000, initiatedBy: 'client' });
      await first;
      expect(await connection.waitClosed()).to.deep.equal({
        code: 4000,
        reason: 'From client: user logged out',
      });
      await requested;
      expect(client.state).to.equal('NO_SESSION');
      expect(sessionClosedEvents).to.equal(0);
    });

    it('calls the outOfBandClose function with the URL and session id', async () => {
      const server = await h.server();
      const calls: unknown[] = [];
      const client = h.client(server, { outOfBandClose: (info) => calls.push(info) });
      void client.send('Test.single', 't', {}).catch(() => {});
      await establish(server, 'OOB_SID');
      await nextEvent(client, 'connection', (e) => e.type === 'SESSION_ESTABLISHED');
      await client.close('bye');
      expect(calls).to.deep.equal([{ webSocketUrl: server.url, sessionId: 'OOB_SID' }]);
    });

    it('truncates a long reason to 123 UTF-8 bytes', async () => {
      const server = await h.server();
      const client = h.client(server);
      void client.send('Test.single', 't', {}).catch(() => {});
      const { connection } = await establish(server);
      await client.close('ø'.repeat(200));
      const { reason } = await connection.waitClosed();
      expect(new TextEncoder().encode(reason).length).to.be.at.most(123);
      expect(reason.startsWith('From client: øø')).to.equal(true);
    });

    it('a close() while an earlier close is in progress still closes a session started in between', async () => {
      const server = await h.server();
      const client = h.client(server);
      void client.send('Test.single', 'first', {}).catch(() => {});
      await establish(server, 'FIRST');
      const first = client.close('one');
      const sent = expectRejection(
        client.send('Test.single', 'second', {}),
        ReceivedError,
        'CLIENT_SESSION_CLOSED',
      );
      const second = client.close('two');
      expect(second).to.not.equal(first);
      await Promise.all([first, second, sent]);
      expect(client.state).to.equal('NO_SESSION');
    });

    it('closes while still connecting, and is a no-op without a session', async () => {
      const server = await h.server();
      const client = h.client(server);
      await client.close('nothing to close');
      const sent = expectRejection(
        client.send('Test.single', 't', {}),
        ReceivedError,
        'CLIENT_SESSION_CLOSED',
      );
      await client.close('before connected');
      await sent;
      expect(client.state).to.equal('NO_SESSION');
    });
  });

  describe('PING', () => {
    it('pings after the initial delay and then every interval, exposing round-trip times', async () => {
      const server = await h.server();
      const client = h.client(server, {
        initialPingDelayMinMs: 20,
        initialPingDelayMaxMs: 30,
        pingIntervalMs: 40,
      });
      void client.send('Test.single', 't', {});
      const { connection } = await establish(server);
      const ping = await connection.next('PING');
      expect(ping).to.deep.equal({ t: 'PING', x: '0' });
      expect(connection.frameOf(ping)).to.have.length(1);
      const pong = nextEvent(client, 'ping:pong');
      connection.send({ t: 'PONG', x: '0' });
      const event = await pong;
      expect(event.pingId).to.equal('0');
      expect(event.roundTripMs).to.be.at.least(0);
      expect(await connection.next('PING')).to.deep.equal({ t: 'PING', x: '1' });
      expect(client.pings.map((p) => p.pingId)).to.deep.equal(['0', '1']);
      expect(client.pings[0]!.roundTripMs).to.equal(event.roundTripMs);
    });

    it('does not ping before the session is established', async () => {
      const server = await h.server();
      const client = h.client(server, {
        initialPingDelayMinMs: 0,
        initialPingDelayMaxMs: 0,
        pingIntervalMs: 10,
      });
      void client.send('Test.single', 't', {}).catch(() => {});
      const connection = await server.nextConnection();
      await connection.next('HELLO');
      await quietPeriod(50);
      expect(connection.all('PING')).to.deep.equal([]);
      connection.send({ t: 'WELCOME', sid: 'S' });
      await connection.next('PING');
    });
  });
});
