import { expect } from 'chai';
import { ReceivedError, ReplyError } from '../../../src/client/clientErrors.ts';
import type { MessageEvent } from '../../../src/client/clientEvents.ts';
import { dummyAuthValue } from '../../../src/cli/compat/DummyAuth.ts';
import { ErrorCode } from '../../../src/errors.ts';
import { DebugOption } from '../../../src/protocol/debugOptions.ts';
import {
  TerminatorInbox,
  eventually,
  expectRejection,
  nextEvent,
  useClientPool,
} from '../../helpers/clientKit.ts';
import {
  compatEnvs,
  requireCompatServices,
  startTestCompatServer,
  type TestCompatServer,
} from './compatTestKit.ts';

const AUTH = dummyAuthValue('standard');

for (const env of compatEnvs()) {
  describe(`compatibility server endpoints (docs/compat-test-server.md 5-6) [${env.label}]`, function () {
    this.timeout(20_000);
    let compat: TestCompatServer | undefined;
    const pool = useClientPool();
    const server = (): TestCompatServer => {
      if (!compat) throw new Error('compat server not started');
      return compat;
    };
    const client = (auth = AUTH, node = 0) => pool.create(server().urls[node]!, auth);

    before(async function () {
      this.timeout(60_000);
      await requireCompatServices(this, env);
      compat = await startTestCompatServer(env);
    });
    after(async function () {
      this.timeout(30_000);
      await compat?.stop();
    });

    describe('forwarding endpoints', () => {
      it('Test.single resolves ReplyDTO through the reply adapter (length, number, requestTimestamp)', async () => {
        const c = client();
        const reply = await c.request('Test.single', 'single', {
          string: 'Request String',
          number: Math.E,
          requestTimestamp: 1_700_000_000_123,
        });
        expect(reply.type).to.equal('RESOLVE');
        expect(reply.data).to.deep.equal({
          number1: 'Request String:FromSingle'.length,
          number2: Math.E * 2,
          requestTimestamp: 1_700_000_000_123,
        });
      });

      it('Test.single tolerates {} (null string renders as "null")', async () => {
        const reply = await client().request('Test.single', 'single-empty', {});
        expect(reply.data).to.deep.equal({
          number1: 'null:FromSingle'.length,
          number2: 0,
          requestTimestamp: 0,
        });
      });

      it('Test.single as a SEND target is ACKed', async () => {
        const received = await client().send('Test.single', 'single-send', { string: 's', number: 1 });
        expect(received.type).to.equal('ACK');
      });

      it('Test.simpleMats resolves the backend reply as-is', async () => {
        const reply = await client().request('Test.simpleMats', 'simple', {
          number: 1.5,
          string: 'x',
          sleepTime: 7,
        });
        expect(reply.data).to.deep.equal({
          number: 1.5,
          string: 'x:FromSimpleMats',
          sleepTime: 7,
          sleepIncoming: 0,
        });
      });

      it('Test.slow delays the ACK by sleepIncoming and the reply by sleepTime', async () => {
        const c = client();
        let ackedAt = 0;
        const started = Date.now();
        const reply = await c.request(
          'Test.slow',
          'slow',
          { number: 2, string: 'slow', sleepTime: 60, sleepIncoming: 40 },
          { ackCallback: () => (ackedAt = Date.now()) },
        );
        expect(reply.data).to.deep.equal({
          number: 2,
          string: 'slow:FromSlow',
          sleepTime: 60,
          sleepIncoming: 0,
        });
        expect(ackedAt - started).to.be.at.least(35);
        expect(Date.now() - started).to.be.at.least(95);
      });
    });

    describe('direct endpoints', () => {
      it('Test.resolveInIncomingHandler: REQUEST resolves, SEND is NACKed', async () => {
        const c = client();
        const reply = await c.request('Test.resolveInIncomingHandler', 'rih', {
          number: 4,
          string: 'r',
          sleepTime: 3,
        });
        expect(reply.data).to.deep.equal({
          number: 4,
          string: 'r:From_resolveInIncomingHandler',
          sleepTime: 3,
          sleepIncoming: 0,
        });
        await expectRejection(
          c.send('Test.resolveInIncomingHandler', 'rih-send', {}),
          ReceivedError,
          ErrorCode.CLIENT_NACKED,
        );
      });

      it('Test.rejectInIncomingHandler: REQUEST rejects {3, 4, requestTimestamp}, SEND is NACKed', async () => {
        const c = client();
        const err = await expectRejection(
          c.request('Test.rejectInIncomingHandler', 'rej', { requestTimestamp: 99 }),
          ReplyError,
          ErrorCode.CLIENT_REJECTED,
        );
        expect(err.event.data).to.deep.equal({ number1: 3, number2: 4, requestTimestamp: 99 });
        await expectRejection(
          c.send('Test.rejectInIncomingHandler', 'rej-send', {}),
          ReceivedError,
          ErrorCode.CLIENT_NACKED,
        );
      });

      it('Test.ignoreInIncomingHandler: SEND is ACKed, REQUEST is NACKed ("was ignored")', async () => {
        const c = client();
        expect((await c.send('Test.ignoreInIncomingHandler', 'ign', {})).type).to.equal('ACK');
        let nackDescription: string | undefined;
        await expectRejection(
          c.request(
            'Test.ignoreInIncomingHandler',
            'ign-req',
            {},
            { nackCallback: (e) => (nackDescription = e.description) },
          ),
          ReplyError,
          ErrorCode.CLIENT_NACKED,
        );
        expect(nackDescription).to.contain('was ignored');
      });

      it('Test.denyInIncomingHandler and Test.throwsInIncomingHandler NACK (the throw with its description)', async () => {
        const c = client();
        await expectRejection(
          c.send('Test.denyInIncomingHandler', 'deny', {}),
          ReceivedError,
          ErrorCode.CLIENT_NACKED,
        );
        await expectRejection(
          c.request('Test.denyInIncomingHandler', 'deny-req', {}),
          ReplyError,
          ErrorCode.CLIENT_NACKED,
        );
        const err = await expectRejection(
          c.send('Test.throwsInIncomingHandler', 'throws', {}),
          ReceivedError,
          ErrorCode.CLIENT_NACKED,
        );
        expect(err.event.description).to.contain('Exception in incoming handler should NACK');
      });

      it('Test.matsSocketPing and the built-ins MatsSocket.matsSocketPing (× e) and MatsSocket.matsPing (× π)', async () => {
        const c = client();
        expect(
          (await c.request('Test.matsSocketPing', 'p1', { payload: 'a', number: 2 })).data,
        ).to.deep.equal({
          payload: 'a',
          number: 2 * Math.E,
        });
        expect((await c.request('Test.matsSocketPing', 'p1b', { payload: 'b' })).data).to.deep.equal({
          payload: 'b',
        });
        expect(
          (await c.request('MatsSocket.matsSocketPing', 'p2', { payload: 'c', number: 3 })).data,
        ).to.deep.equal({
          payload: 'c',
          number: 3 * Math.E,
        });
        expect(
          (await c.request('MatsSocket.matsPing', 'p3', { payload: 'd', number: 3 })).data,
        ).to.deep.equal({
          payload: 'd',
          number: 3 * Math.PI,
        });
      });

      it('NON EXISTING! is NACKed for SEND and REQUEST', async () => {
        const c = client();
        await expectRejection(c.send('NON EXISTING!', 'ne', {}), ReceivedError, ErrorCode.CLIENT_NACKED);
        await expectRejection(c.request('NON EXISTING!', 'ne-req', {}), ReplyError, ErrorCode.CLIENT_NACKED);
      });

      it('Test.replyWithCookieAuthorization omits the string without a preconnect cookie', async () => {
        const reply = await client().request('Test.replyWithCookieAuthorization', 'cookie', {
          number: 1,
          sleepTime: 2,
        });
        expect(reply.data).to.deep.equal({ number: 1, sleepTime: 2, sleepIncoming: 0 });
      });
    });

    describe('reply adapters', () => {
      it('resolve → RESOLVE {1, 2, 123}; reject → REJECT {1, 2, 123}', async () => {
        const c = client();
        expect((await c.request('Test.resolveInReplyAdapter', 'ra1', {})).data).to.deep.equal({
          number1: 1,
          number2: 2,
          requestTimestamp: 123,
        });
        const err = await expectRejection(
          c.request('Test.rejectInReplyAdapter', 'ra2', {}),
          ReplyError,
          ErrorCode.CLIENT_REJECTED,
        );
        expect(err.event.data).to.deep.equal({ number1: 1, number2: 2, requestTimestamp: 123 });
      });

      it('ignore → REJECT "ReplyAdapter didn\'t decide..."; throw → REJECT with the exception text', async () => {
        const c = client();
        const ignored = await expectRejection(
          c.request('Test.ignoreInReplyAdapter', 'ra3', {}),
          ReplyError,
          ErrorCode.CLIENT_REJECTED,
        );
        expect(ignored.message).to.contain("ReplyAdapter didn't decide what action, thus REJECT.");
        const threw = await expectRejection(
          c.request('Test.throwsInReplyAdapter', 'ra4', {}),
          ReplyError,
          ErrorCode.CLIENT_REJECTED,
        );
        expect(threw.message).to.contain('Exception in reply adapter should REJECT.');
      });
    });

    describe('server-initiated messages', () => {
      for (const [endpointId, suffix, mode] of [
        ['Test.server.send.matsStage', ':SentFromMatsStage', 1],
        ['Test.server.send.thread', ':SentFromThread', 2],
      ] as const) {
        it(`${endpointId}: ClientSide.terminator gets traceId + "${suffix}" and the number`, async () => {
          const c = client();
          const inbox = new TerminatorInbox(c, 'ClientSide.terminator');
          await c.send(endpointId, `send_${mode}`, { number: 42.5 });
          const [message] = await inbox.waitFor(1);
          expect(message!.traceId).to.equal(`send_${mode}${suffix}`);
          expect(message!.data).to.deep.equal({
            number: 42.5,
            string: c.sessionId,
            sleepTime: mode,
            sleepIncoming: 0,
          });
        });
      }

      for (const via of ['direct', 'viaMats'] as const) {
        it(`Test.server.request.${via}: the client's RESOLVE and REJECT come back to ClientSide.terminator`, async () => {
          const c = client();
          const inbox = new TerminatorInbox(c, 'ClientSide.terminator');
          let calls = 0;
          c.endpoint('ClientSide.endpoint', (event: MessageEvent) => {
            const data = event.data as { number: number; string: string; sleepTime: number };
            // A client endpoint REJECTs with whatever its promise rejects with (here the DTO itself).
            // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
            return ++calls === 1 ? data : Promise.reject(data);
          });
          await c.send(`Test.server.request.${via}`, `req_${via}_1`, {
            number: 1,
            string: 'one',
            sleepTime: 5,
          });
          await inbox.waitFor(1);
          await c.send(`Test.server.request.${via}`, `req_${via}_2`, {
            number: 2,
            string: 'two',
            sleepTime: 6,
          });
          const messages = await inbox.waitFor(2);
          expect(messages.map((m) => m.data)).to.deep.equal([
            { number: 1, string: 'one:RESOLVE', sleepTime: 5, sleepIncoming: 0 },
            { number: 2, string: 'two:REJECT', sleepTime: 6, sleepIncoming: 0 },
          ]);
          expect(messages.map((m) => m.traceId)).to.deep.equal([`req_${via}_1`, `req_${via}_2`]);
        });
      }

      it('Test.renewAuth: MatsSocket.renewAuth round trip delivers the renewed authorization', async () => {
        const c = client();
        const renewed = dummyAuthValue('standard', Date.now() + 3_600_000);
        c.setAuthorizationExpiredCallback((event) => {
          if (event.type === 'REAUTHENTICATE')
            c.setCurrentAuthorization(renewed, Date.now() + 3_600_000, 1000);
        });
        const inbox = new TerminatorInbox(c, 'Client.renewAuth_terminator');
        await c.send('Test.renewAuth', 'renew', {});
        const [message] = await inbox.waitFor(1);
        expect(message!.data).to.equal(renewed);
      });

      it('Test.publish: a subscriber gets the publication on its topic', async () => {
        const c = client();
        const pubs: MessageEvent[] = [];
        c.subscribe('Test.topic.compat', (e) => pubs.push(e));
        await nextEvent(c, 'subscription', (e) => e.topicId === 'Test.topic.compat');
        await c.send('Test.publish', 'pub', 'Test.topic.compat');
        const other = client(AUTH, 1);
        const otherPubs: MessageEvent[] = [];
        other.subscribe('Test.topic.compat', (e) => otherPubs.push(e));
        await nextEvent(other, 'subscription', (e) => e.topicId === 'Test.topic.compat');
        await c.send('Test.publish', 'pub2', 'Test.topic.compat');
        await eventually(() => pubs.length >= 2 && otherPubs.length >= 1, {
          what: 'publications on both nodes',
        });
        expect(pubs[0]!.data).to.deep.include({ string: 'Test from server!', sleepTime: 42 });
        expect(pubs[0]!.traceId).to.equal('Test 1 2 3');
      });

      it('Test.closeThisSession: close 4000, and the outstanding Test.slow request is rejected SESSION_CLOSED', async () => {
        const c = client();
        const slow = c.request('Test.slow', 'slow-close', { sleepTime: 500 });
        const closed = nextEvent(c, 'session:closed', () => true, 5000);
        await c.send('Test.closeThisSession', 'close', {});
        expect((await closed).code).to.equal(4000);
        await expectRejection(slow, ReplyError, ErrorCode.CLIENT_SESSION_CLOSED);
      });
    });

    describe('DummyAuth (docs/compat-test-server.md 3-4)', () => {
      it('a userId containing fail_initialAuthentication closes 1008', async () => {
        const c = client(dummyAuthValue('fail_initialAuthentication'));
        const closed = nextEvent(c, 'session:closed');
        const request = c.request('Test.single', 'x', {});
        expect((await closed).code).to.equal(1008);
        await expectRejection(request, ReplyError, ErrorCode.CLIENT_SESSION_CLOSED);
      });

      it('enableAllDebugOptions gets the requested debug fields, with the node names compat-<port>', async () => {
        const c = client(dummyAuthValue('enableAllDebugOptions'));
        const requested = DebugOption.TIMESTAMPS | DebugOption.NODES;
        const reply = await c.request('Test.single', 'dbg', { string: 'd' }, { debug: requested });
        const port = new URL(server().urls[0]!).port;
        expect(reply.debug?.resolved).to.equal(requested);
        expect(reply.debug?.clientMessageReceivedNodename).to.equal(`compat-${port}`);
        expect(reply.debug?.clientMessageReceived).to.be.a('number');
      });

      it('any other user gets no debug options', async () => {
        const reply = await client().request('Test.single', 'nodbg', {}, { debug: 255 });
        expect(reply.debug?.resolved ?? 0).to.equal(0);
        expect(reply.debug?.clientMessageReceivedNodename).to.equal(undefined);
      });

      it('topics starting with Test.noAuth. are refused (SUB_NO_AUTH)', async () => {
        const c = client();
        c.subscribe('Test.noAuth.secret', () => undefined);
        const event = await nextEvent(c, 'subscription', (e) => e.topicId === 'Test.noAuth.secret');
        expect(event.type).to.equal('NOT_AUTHORIZED');
      });

      it(':fail_reevaluateAuthentication: → REAUTH; the held message is processed after new auth', async () => {
        const c = client();
        await c.send('Test.ignoreInIncomingHandler', 'start', {});
        let reauths = 0;
        c.setAuthorizationExpiredCallback((event) => {
          if (event.type !== 'REAUTHENTICATE') return;
          reauths++;
          c.setCurrentAuthorization(
            dummyAuthValue('standard', Date.now() + 60_000),
            Date.now() + 60_000,
            1000,
          );
        });
        c.setCurrentAuthorization(dummyAuthValue('fail_reevaluateAuthentication'));
        const reply = await c.request('Test.simpleMats', 'held', { string: 'h' });
        expect(reply.data).to.deep.include({ string: 'h:FromSimpleMats' });
        expect(reauths).to.equal(1);
      });
    });
  });
}
