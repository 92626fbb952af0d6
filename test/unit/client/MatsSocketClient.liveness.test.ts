import { expect } from 'chai';
import { ReceivedError, ReplyError } from '../../../src/client/clientErrors.ts';
import type { ConnectionEvent } from '../../../src/client/clientEvents.ts';
import { AUTH, establish, expectRejection, nextEvent, quietPeriod, useHarness } from './harness.ts';

describe('MatsSocketClient: timeouts, silent servers and unstable connections', () => {
  const h = useHarness();

  describe('a message that timed out is never sent afterwards', () => {
    it('a REQUEST held for authorization times out and is not sent once authorization comes', async () => {
      const server = await h.server();
      const client = h.client(server, {}, null);
      client.setAuthorizationExpiredCallback(() => {}); // asked, but the application is slow to answer
      const reply = client.request('Test.single', 't', { n: 1 }, { timeout: 30 });
      await expectRejection(reply, ReplyError, 'CLIENT_TIMEOUT');
      // The application retries, as it would after TIMEOUT: only the retry may reach the server.
      client.setCurrentAuthorization(AUTH);
      const retried = client.request('Test.single', 't', { n: 2 }, { timeout: 2000 });
      const { connection } = await establish(server);
      const request = await connection.next('REQUEST');
      expect(request.msg).to.deep.equal({ n: 2 });
      connection.send({ t: 'RESOLVE', cmid: request.cmid, tid: 't', smid: 'SM1', msg: 'ok' });
      await retried;
      expect(connection.all('REQUEST').map((r) => r.msg)).to.deep.equal([{ n: 2 }]);
    });

    it('a SEND that gets no ACK within sendTimeoutMs rejects with TIMEOUT; a queued one is never sent', async () => {
      const server = await h.server();
      const client = h.client(server, { sendTimeoutMs: 40 }, null);
      client.setAuthorizationExpiredCallback(() => {});
      const held = client.send('Test.single', 't', { n: 1 });
      const error = await expectRejection(held, ReceivedError, 'CLIENT_TIMEOUT');
      expect(error.event.type).to.equal('TIMEOUT');
      client.setCurrentAuthorization(AUTH);
      const sent = client.send('Test.single', 't', { n: 2 });
      const { connection } = await establish(server);
      const send = await connection.next('SEND');
      expect(send.msg).to.deep.equal({ n: 2 });
      // The server never ACKs: the SEND's promise does not hang.
      await expectRejection(sent, ReceivedError, 'CLIENT_TIMEOUT');
      expect(connection.all('SEND').map((s) => s.msg)).to.deep.equal([{ n: 2 }]);
    });
  });

  describe('a silent server', () => {
    it('an unanswered PING drops the connection (4002) and the client resumes on a new one', async () => {
      const server = await h.server();
      const client = h.client(server, {
        initialPingDelayMinMs: 10,
        initialPingDelayMaxMs: 10,
        pingIntervalMs: 20,
        pongTimeoutMs: 60,
      });
      void client.send('Test.single', 't', {}).catch(() => {});
      const { connection } = await establish(server, 'SILENT1');
      await connection.next('PING');
      // No PONG ever comes.
      const closed = await connection.waitClosed(2000);
      expect(closed.code).to.equal(4002);
      expect(closed.reason).to.match(/no PONG/);
      const second = await server.nextConnection();
      expect((await second.welcome('SILENT1')).sid).to.equal('SILENT1');
    });

    it('a server that answers PINGs keeps the connection', async () => {
      const server = await h.server();
      const client = h.client(server, {
        initialPingDelayMinMs: 10,
        initialPingDelayMaxMs: 10,
        pingIntervalMs: 15,
        // Long enough that a loaded machine's late PONG handling is not taken for silence.
        pongTimeoutMs: 2000,
      });
      void client.send('Test.single', 't', {}).catch(() => {});
      const { connection } = await establish(server);
      for (let i = 0; i < 8; i++) {
        const ping = await connection.next('PING');
        connection.send({ t: 'PONG', x: ping.x });
      }
      expect(server.connections).to.have.length(1);
      expect(client.state).to.equal('SESSION_ESTABLISHED');
    });
  });

  describe('connections that open and drop in a row', () => {
    it('back off with connectBackoff, and a stable connection resets the count', async () => {
      const server = await h.server();
      const client = h.client(server, {
        reconnectDelayMinMs: 5,
        reconnectDelayMaxMs: 10,
        connectBackoff: { initialMs: 40, factor: 2, maxMs: 400, jitter: 0 },
        stableConnectionMs: 150,
      });
      const delays: number[] = [];
      client.on('connection', (event: ConnectionEvent) => {
        if (event.type === 'LOST_CONNECTION' && event.reconnectInMs !== undefined)
          delays.push(event.reconnectInMs);
      });
      void client.send('Test.single', 't', {}).catch(() => {});
      // A server that says WELCOME and then goes down at once, four times.
      for (let i = 0; i < 4; i++) {
        const { connection } = await establish(server, 'FLAP');
        await connection.close(1012, 'From Server: going down');
      }
      expect(delays[0]).to.be.within(5, 10);
      expect(delays.slice(1)).to.deep.equal([40, 80, 160]);
      // A connection that lives past stableConnectionMs: the next loss reconnects quickly again.
      const { connection } = await establish(server, 'FLAP');
      await quietPeriod(200);
      const lost = nextEvent(client, 'connection', (e) => e.type === 'LOST_CONNECTION');
      await connection.close(1012, 'From Server: going down');
      const event = await lost;
      expect(event.type === 'LOST_CONNECTION' && event.reconnectInMs).to.be.within(5, 10);
    });
  });
});
