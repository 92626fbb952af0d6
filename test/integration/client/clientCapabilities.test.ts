import { expect } from 'chai';
import { ReplyError } from '../../../src/client/clientErrors.ts';
import type { AuthorizationRequiredEvent, MessageEvent } from '../../../src/client/clientEvents.ts';
import { dummyAuthValue } from '../../../src/cli/compat/DummyAuth.ts';
import { ErrorCode } from '../../../src/errors.ts';
import {
  TerminatorInbox,
  eventually,
  expectRejection,
  nextEvent,
  useClientPool,
} from '../../helpers/clientKit.ts';
import { describeEachClientEnv } from './clientTestKit.ts';

const AUTH = dummyAuthValue('standard');

describeEachClientEnv('MatsSocketClient against the real server', { nodes: 1 }, (ctx) => {
  const pool = useClientPool();
  const node = () => ctx().cluster.nodes[0]!;
  const client = (auth: string | null = AUTH, overrides = {}) => pool.create(node().url, auth, overrides);

  describe('client-initiated', () => {
    it('send(): resolves with the ACK, never in the same turn as the receipt', async () => {
      const c = client();
      const ack = await c.send('Test.single', 'send1', { string: 'a', number: 1 });
      expect(ack.type).to.equal('ACK');
      expect(ack.roundTripMs).to.be.at.least(1);
      expect(c.state).to.equal('SESSION_ESTABLISHED');
      expect(c.sessionId).to.be.a('string').with.length(16);
    });

    it('request(): resolves with the backend reply through the reply adapter', async () => {
      const reply = await client().request('Test.single', 'req1', {
        string: 'abc',
        number: 2,
        requestTimestamp: 5,
      });
      expect(reply.type).to.equal('RESOLVE');
      expect(reply.traceId).to.equal('req1');
      expect(reply.data).to.deep.equal({ number1: 'abc:FromSingle'.length, number2: 4, requestTimestamp: 5 });
    });

    it('requestReplyTo(): RESOLVE and REJECT reach the local terminator with the correlation information', async () => {
      const c = client();
      const resolved: MessageEvent[] = [];
      const rejected: MessageEvent[] = [];
      c.terminator(
        'ClientSide.testTerminator',
        (e) => resolved.push(e),
        (e) => rejected.push(e),
      );
      const ack = await c.requestReplyTo(
        'Test.simpleMats',
        'rrt1',
        { string: 's', number: 3 },
        'ClientSide.testTerminator',
        { mine: 1 },
      );
      expect(ack.type).to.equal('ACK');
      await c.requestReplyTo(
        'Test.rejectInIncomingHandler',
        'rrt2',
        { requestTimestamp: 8 },
        'ClientSide.testTerminator',
        'two',
      );
      await eventually(() => resolved.length === 1 && rejected.length === 1, { what: 'both replies' });
      expect(resolved[0]!.data).to.deep.equal({
        number: 3,
        string: 's:FromSimpleMats',
        sleepTime: 0,
        sleepIncoming: 0,
      });
      expect(resolved[0]!.correlationInformation).to.deep.equal({ mine: 1 });
      expect(rejected[0]!.type).to.equal('REJECT');
      expect(rejected[0]!.data).to.deep.equal({ number1: 3, number2: 4, requestTimestamp: 8 });
      expect(rejected[0]!.correlationInformation).to.equal('two');
    });

    it('a request timeout rejects locally with CLIENT_TIMEOUT', async () => {
      const c = client();
      await expectRejection(
        c.request('Test.slow', 'timeout', { sleepTime: 1000 }, { timeout: 100 }),
        ReplyError,
        ErrorCode.CLIENT_TIMEOUT,
      );
    });
  });

  describe('server-initiated', () => {
    it('server.send() from the API and from a Mats stage reach a client terminator', async () => {
      const c = client();
      const inbox = new TerminatorInbox(c, 'ClientSide.terminator');
      await c.send('Test.ignoreInIncomingHandler', 'start', {});
      expect(
        await node().server.send(c.sessionId!, 'api-send', 'ClientSide.terminator', { number: 1 }),
      ).to.equal(true);
      await c.send('Test.server.send.matsStage', 'stage', { number: 2 });
      const messages = await inbox.waitFor(2);
      expect(messages.map((m) => [m.type, m.traceId, (m.data as { number: number }).number])).to.deep.equal([
        ['SEND', 'api-send', 1],
        ['SEND', 'stage:SentFromMatsStage', 2],
      ]);
      expect(messages[0]!.messageId).to.be.a('string').with.length(12);
    });

    it('server.request() to a client endpoint: the endpoint answer goes to the reply terminator', async () => {
      const c = client();
      const inbox = new TerminatorInbox(c, 'ClientSide.terminator');
      const seen: MessageEvent[] = [];
      c.endpoint('ClientSide.endpoint', (e) => {
        seen.push(e);
        return new Promise((resolve) => setTimeout(() => resolve(e.data), 10));
      });
      await c.send('Test.server.request.viaMats', 'srv-req', { number: 9, string: 'q' });
      const [answer] = await inbox.waitFor(1);
      expect(seen[0]!.type).to.equal('REQUEST');
      expect(answer!.data).to.deep.equal({ number: 9, string: 'q:RESOLVE', sleepTime: 0, sleepIncoming: 0 });
    });

    it('MatsSocket.renewAuth: the client renews its authorization, the server sees the new value', async () => {
      const c = client();
      const renewed = dummyAuthValue('standard', Date.now() + 600_000);
      const asked: AuthorizationRequiredEvent[] = [];
      c.setAuthorizationExpiredCallback((e) => {
        asked.push(e);
        c.setCurrentAuthorization(renewed, Date.now() + 600_000, 1000);
      });
      const inbox = new TerminatorInbox(c, 'Client.renewAuth_terminator');
      await c.send('Test.renewAuth', 'renew', {});
      const [message] = await inbox.waitFor(1);
      expect(message!.data).to.equal(renewed);
      expect(asked.map((e) => e.type)).to.deep.equal(['REAUTHENTICATE']);
    });
  });

  describe('topics', () => {
    it('subscribe: SUB_OK, then publications; after a reconnect the missed ones are replayed in order', async () => {
      const c = client();
      const data: unknown[] = [];
      c.subscribe('Client.topic.replay', (e) => data.push(e.data));
      expect((await nextEvent(c, 'subscription', (e) => e.topicId === 'Client.topic.replay')).type).to.equal(
        'OK',
      );
      await node().server.publish('p1', 'Client.topic.replay', { n: 1 });
      await eventually(() => data.length === 1, { what: 'the first publication' });
      // 4003-style drop: the client stays disconnected until the application sends something.
      const lost = nextEvent(c, 'connection', (e) => e.type === 'LOST_CONNECTION');
      c.reconnect('test: go away for a while', true);
      await lost;
      await node().server.publish('p2', 'Client.topic.replay', { n: 2 });
      await node().server.publish('p3', 'Client.topic.replay', { n: 3 });
      expect(data).to.deep.equal([{ n: 1 }]);
      const replayOk = nextEvent(c, 'subscription', (e) => e.topicId === 'Client.topic.replay');
      await c.send('Test.ignoreInIncomingHandler', 'wake', {});
      expect((await replayOk).type).to.equal('OK');
      await eventually(() => data.length === 3, { what: 'the replayed publications' });
      expect(data).to.deep.equal([{ n: 1 }, { n: 2 }, { n: 3 }]);
    });

    it('a refused topic gives NOT_AUTHORIZED', async () => {
      const c = client();
      c.subscribe('Test.noAuth.x', () => undefined);
      expect((await nextEvent(c, 'subscription')).type).to.equal('NOT_AUTHORIZED');
    });
  });

  describe('authorization', () => {
    it('incoming REAUTH: the held message is processed after the new authorization, with one callback', async () => {
      const c = client(dummyAuthValue('standard'));
      await c.send('Test.ignoreInIncomingHandler', 'start', {});
      const asked: string[] = [];
      c.setAuthorizationExpiredCallback((e) => {
        asked.push(e.type);
        c.setCurrentAuthorization(
          dummyAuthValue('standard', Date.now() + 600_000),
          Date.now() + 600_000,
          1000,
        );
      });
      c.setCurrentAuthorization(dummyAuthValue('fail_reevaluateAuthentication'));
      const reply = await c.request('Test.resolveInIncomingHandler', 'held', { string: 'h' });
      expect(reply.data).to.deep.include({ string: 'h:From_resolveInIncomingHandler' });
      expect(asked).to.deep.equal(['REAUTHENTICATE']);
    });

    it('outgoing REAUTH: the reply is held until the client re-authenticates', async () => {
      const c = client(dummyAuthValue('fail_reevaluateAuthenticationForOutgoingMessage'));
      const asked: string[] = [];
      c.setAuthorizationExpiredCallback((e) => {
        asked.push(e.type);
        c.setCurrentAuthorization(
          dummyAuthValue('standard', Date.now() + 600_000),
          Date.now() + 600_000,
          1000,
        );
      });
      const reply = await c.request('Test.simpleMats', 'out-reauth', { string: 'o' });
      expect(reply.data).to.deep.include({ string: 'o:FromSimpleMats' });
      expect(asked).to.deep.equal(['REAUTHENTICATE']);
    });

    it('an expiring authorization: the client asks for a new one (EXPIRED) before sending', async () => {
      const c = client(null);
      const asked: AuthorizationRequiredEvent[] = [];
      let firstExpiry = 0;
      c.setAuthorizationExpiredCallback((e) => {
        asked.push(e);
        const expires = Date.now() + (asked.length === 1 ? 150 : 600_000);
        if (asked.length === 1) firstExpiry = expires;
        c.setCurrentAuthorization(dummyAuthValue('standard', expires), expires, 100);
      });
      await c.send('Test.ignoreInIncomingHandler', 'first', {});
      // The clock has to pass the first value's expiry (minus its room for latency).
      await eventually(() => Date.now() >= firstExpiry - 100, { what: 'the expiry time' });
      await c.send('Test.ignoreInIncomingHandler', 'second', {});
      expect(asked.map((e) => e.type)).to.deep.equal(['NOT_PRESENT', 'EXPIRED']);
    });
  });

  describe('connection', () => {
    it('PING → PONG: round trips are recorded', async () => {
      const c = client(AUTH, { initialPingDelayMinMs: 10, initialPingDelayMaxMs: 20, pingIntervalMs: 40 });
      await c.send('Test.ignoreInIncomingHandler', 'start', {});
      await nextEvent(c, 'ping:pong');
      await nextEvent(c, 'ping:pong');
      expect(c.pings.length).to.be.at.least(2);
      expect(c.pings[0]!.roundTripMs).to.be.a('number');
      expect(c.pings.map((p) => p.pingId).slice(0, 2)).to.deep.equal(['0', '1']);
    });

    it('a dropped connection with pending requests: reconnects, resumes, each reply exactly once', async () => {
      const c = client();
      const { counter } = ctx();
      const replies = [0, 1, 2].map((i) =>
        c.request<{ runs: number }>('Client.counted', `drop-${i}`, { sleepTime: 150 }),
      );
      await eventually(() => c.outstandingInitiations === 0, { what: 'the ACKs' });
      const resumed = nextEvent(c, 'connection', (e) => e.type === 'SESSION_ESTABLISHED' && e.resumed);
      c.reconnect('test: drop');
      await resumed;
      const results = await Promise.all(replies);
      expect(results.map((r) => r.data.runs)).to.deep.equal([1, 1, 1]);
      expect([0, 1, 2].map((i) => counter.count(`drop-${i}`))).to.deep.equal([1, 1, 1]);
    });

    it('close(): the server terminates the session; the next message starts a new one', async () => {
      const c = client();
      await c.send('Test.ignoreInIncomingHandler', 'start', {});
      const sid = c.sessionId!;
      const removed = new Promise<string>((resolve) => {
        const off = node().server.on('sessionRemoved', (e) => {
          if (e.sessionId !== sid) return;
          off();
          resolve(e.type);
        });
      });
      await c.close('done with it');
      expect(await removed).to.equal('CLOSE');
      expect((await node().server.getSessions()).map((s) => s.id)).not.to.include(sid);
      await c.send('Test.ignoreInIncomingHandler', 'again', {});
      expect(c.sessionId).to.be.a('string').and.not.equal(sid);
    });

    it('server closeSession(): 4000 to the client, outstanding requests rejected SESSION_CLOSED', async () => {
      const c = client();
      const slow = c.request('Test.slow', 'slow', { sleepTime: 2000 });
      await eventually(() => c.sessionId, { what: 'the session' });
      const closed = nextEvent(c, 'session:closed');
      await node().server.closeSession(c.sessionId!, 'test');
      expect((await closed).code).to.equal(4000);
      await expectRejection(slow, ReplyError, ErrorCode.CLIENT_SESSION_CLOSED);
    });
  });
});
