import { expect } from 'chai';
import { ReceivedError, ReplyError } from '../../../src/client/clientErrors.ts';
import type { InitiationProcessedEvent, ReceivedEvent } from '../../../src/client/clientEvents.ts';
import { establish, expectRejection, nextEvent, quietPeriod, useHarness } from './harness.ts';

describe('MatsSocketClient: send and request', () => {
  const h = useHarness();

  describe('#send()', () => {
    it('connects lazily with HELLO, sends the SEND in the next frame, resolves on ACK and sends ACK2', async () => {
      const server = await h.server();
      const client = h.client(server);
      expect(client.state).to.equal('NO_SESSION');
      const sent = client.send('Test.single', 'SEND_a1', { string: 's', number: 3.14 });
      const connection = await server.nextConnection();
      const helloFrame = await connection.nextFrame();
      expect(helloFrame).to.have.length(1);
      expect(helloFrame[0]).to.deep.include({
        t: 'HELLO',
        an: 'TestApp',
        av: '1.2.3',
        auth: 'DummyAuth:standard:-1',
      });
      expect(helloFrame[0]).to.not.have.property('sid');
      expect((helloFrame[0] as { clv: string }).clv).to.match(/^MatsSocket\.ts,/);
      connection.send({ t: 'WELCOME', sid: 'Qk3v9ZpL2mXa7TbR' });
      const sendFrame = await connection.nextFrame();
      // The first information-bearing message carries rd: 0 (section 5), and cmids start at "0".
      expect(sendFrame).to.deep.equal([
        {
          t: 'SEND',
          eid: 'Test.single',
          tid: 'SEND_a1',
          cmid: '0',
          rd: 0,
          msg: { string: 's', number: 3.14 },
        },
      ]);
      await nextEvent(client, 'connection', (e) => e.type === 'SESSION_ESTABLISHED');
      expect(client.sessionId).to.equal('Qk3v9ZpL2mXa7TbR');
      expect(client.state).to.equal('SESSION_ESTABLISHED');
      connection.send({ t: 'ACK', cmid: '0' });
      const event = await sent;
      expect(event).to.include({ type: 'ACK', cmid: '0', traceId: 'SEND_a1' });
      expect(event.roundTripMs).to.be.at.least(0);
      expect(event.receivedTimestamp).to.be.at.least(event.sentTimestamp);
      expect(await connection.next('ACK2')).to.deep.equal({ t: 'ACK2', cmid: '0' });
    });

    it('rejects with ReceivedError CLIENT_NACKED on NACK, carrying the description, and still sends ACK2', async () => {
      const server = await h.server();
      const client = h.client(server);
      const sent = client.send('Test.unknown', 'trace', 'hi');
      const { connection } = await establish(server);
      const send = await connection.next('SEND');
      connection.send({
        t: 'NACK',
        cmid: send.cmid,
        desc: 'An incoming SEND envelope targeted a non-existing endpoint',
      });
      const error = await expectRejection(sent, ReceivedError, 'CLIENT_NACKED');
      expect(error.event).to.include({
        type: 'NACK',
        cmid: '0',
        description: 'An incoming SEND envelope targeted a non-existing endpoint',
      });
      expect(await connection.next('ACK2')).to.deep.equal({ t: 'ACK2', cmid: '0' });
    });

    it('only sends rd: 0 once, and rd with the debug options when they are set', async () => {
      const server = await h.server();
      const client = h.client(server);
      void client.send('e', 't1');
      const { connection } = await establish(server);
      expect(await connection.next('SEND')).to.include({ cmid: '0', rd: 0 });
      void client.send('e', 't2');
      expect(await connection.next('SEND')).to.not.have.property('rd');
      void client.send('e', 't3', undefined, { debug: 3 });
      expect(await connection.next('SEND')).to.include({ cmid: '2', rd: 3 });
      void client.send('e', 't4');
      expect(await connection.next('SEND')).to.include({ cmid: '3', rd: 0 });
      connection.send({ t: 'ACK', ids: ['0', '1', '2', '3'] });
      await connection.next('ACK2');
    });

    it('pipelines messages enqueued together into one frame', async () => {
      const server = await h.server();
      const client = h.client(server);
      const all = [client.send('e', 'a'), client.send('e', 'b'), client.send('e', 'c')];
      const connection = await server.nextConnection();
      await connection.nextFrame(); // HELLO
      const frame = await connection.nextFrame();
      expect(frame.map((e) => (e as { cmid: string }).cmid)).to.deep.equal(['0', '1', '2']);
      connection.send({ t: 'WELCOME', sid: 'S' }, { t: 'ACK', ids: ['0', '1', '2'] });
      const events = await Promise.all(all);
      expect(events.map((e) => e.type)).to.deep.equal(['ACK', 'ACK', 'ACK']);
      expect(await connection.next('ACK2')).to.deep.equal({ t: 'ACK2', ids: ['0', '1', '2'] });
    });

    it('flush() sends at once, without waiting for the pipeline debounce', async () => {
      const server = await h.server();
      const client = h.client(server, { pipelineDelayMs: 60_000 });
      const sent = client.send('e', 'a');
      client.flush();
      const { connection } = await establish(server);
      // With a 60 s debounce the SEND can only have left through flush() (it trails the HELLO).
      const send = await connection.next('SEND');
      connection.send({ t: 'ACK', cmid: send.cmid });
      expect((await sent).type).to.equal('ACK');
    });

    it('issues initiation:processed after the send promise settled, with timings', async () => {
      const server = await h.server();
      const client = h.client(server);
      const order: string[] = [];
      const processed = nextEvent(client, 'initiation:processed');
      const sent = client.send('Test.single', 'trace').then((e) => {
        order.push('promise');
        return e;
      });
      client.on('initiation:processed', () => order.push('processed'));
      const { connection } = await establish(server);
      await connection.next('SEND');
      connection.send({ t: 'ACK', cmid: '0' });
      const event: InitiationProcessedEvent = await processed;
      await sent;
      expect(order).to.deep.equal(['promise', 'processed']);
      expect(event).to.include({
        kind: 'SEND',
        endpointId: 'Test.single',
        cmid: '0',
        traceId: 'trace',
        receivedType: 'ACK',
      });
      expect(event.acknowledgeRoundTripMs).to.be.at.least(0);
      expect(client.initiations).to.have.length(1);
    });
  });

  describe('#request()', () => {
    it('sends REQUEST with to, calls ackCallback on ACK, resolves on RESOLVE from the outbox and ACKs its smid', async () => {
      const server = await h.server();
      const client = h.client(server);
      const order: string[] = [];
      const reply = client.request<{ r: number }>(
        'Test.single',
        'REQ_x',
        { q: 1 },
        {
          ackCallback: (e) => order.push(`ack:${e.type}`),
        },
      );
      const { connection } = await establish(server);
      const request = await connection.next('REQUEST');
      expect(request).to.deep.include({
        eid: 'Test.single',
        tid: 'REQ_x',
        cmid: '0',
        to: 45000,
        msg: { q: 1 },
      });
      connection.send({ t: 'ACK', cmid: '0' });
      expect(await connection.next('ACK2')).to.deep.equal({ t: 'ACK2', cmid: '0' });
      expect(order).to.deep.equal(['ack:ACK']);
      connection.send({ t: 'RESOLVE', cmid: '0', tid: 'REQ_x', smid: 'pX81kQ2mZr0a', msg: { r: 2 } });
      const event = await reply;
      expect(event).to.deep.include({ type: 'RESOLVE', data: { r: 2 }, traceId: 'REQ_x', messageId: '0' });
      expect(event.roundTripMs).to.be.at.least(0);
      expect(await connection.next('ACK')).to.deep.equal({ t: 'ACK', smid: 'pX81kQ2mZr0a' });
    });

    it('treats a reply that overtakes the ACK as ACK plus reply (ACK elision): ACK{smid} and ACK2{cmid}', async () => {
      const server = await h.server();
      const client = h.client(server);
      const order: string[] = [];
      const reply = client.request('Test.single', 't2', {}, { ackCallback: () => order.push('ack') });
      void reply.then(() => order.push('reply'));
      const { connection } = await establish(server);
      await connection.next('REQUEST');
      connection.send({ t: 'RESOLVE', cmid: '0', tid: 't2', smid: 'SM1', msg: 'fast' });
      expect((await reply).data).to.equal('fast');
      expect(await connection.next('ACK')).to.deep.equal({ t: 'ACK', smid: 'SM1' });
      expect(await connection.next('ACK2')).to.deep.equal({ t: 'ACK2', cmid: '0' });
      expect(order).to.deep.equal(['ack', 'reply']);
    });

    it('handles an insta reply without smid: no ACK is sent, only ACK2{cmid}', async () => {
      const server = await h.server();
      const client = h.client(server);
      const reply = client.request('Test.resolveInIncomingHandler', 't3', {});
      const { connection } = await establish(server);
      await connection.next('REQUEST');
      connection.send({ t: 'RESOLVE', cmid: '0', tid: 't3', msg: { insta: true } });
      expect((await reply).data).to.deep.equal({ insta: true });
      expect(await connection.next('ACK2')).to.deep.equal({ t: 'ACK2', cmid: '0' });
      // ACKs are batched for 20 ms and ACK2s for 50 ms: an ACK would have come before the ACK2.
      expect(connection.all('ACK')).to.deep.equal([]);
    });

    it('rejects with ReplyError CLIENT_REJECTED on REJECT, with the message as event data', async () => {
      const server = await h.server();
      const client = h.client(server);
      const reply = client.request('Test.reject', 't', {});
      const { connection } = await establish(server);
      await connection.next('REQUEST');
      connection.send({ t: 'REJECT', cmid: '0', tid: 't', smid: 'S9', msg: { why: 'no' } });
      const error = await expectRejection(reply, ReplyError, 'CLIENT_REJECTED');
      expect(error.event).to.deep.include({ type: 'REJECT', data: { why: 'no' }, messageId: '0' });
      expect(await connection.next('ACK')).to.deep.equal({ t: 'ACK', smid: 'S9' });
    });

    it('calls nackCallback and rejects with CLIENT_NACKED when the server NACKs the request', async () => {
      const server = await h.server();
      const client = h.client(server);
      const nacks: ReceivedEvent[] = [];
      const reply = client.request('Test.terminator', 't', {}, { nackCallback: (e) => nacks.push(e) });
      const { connection } = await establish(server);
      await connection.next('REQUEST');
      connection.send({ t: 'NACK', cmid: '0', desc: 'it is a Terminator' });
      const error = await expectRejection(reply, ReplyError, 'CLIENT_NACKED');
      expect(error.event.type).to.equal('NACK');
      expect(nacks.map((e) => [e.type, e.description])).to.deep.equal([['NACK', 'it is a Terminator']]);
    });

    it('times out: sends the timeout as to, NACKs locally with TIMEOUT and rejects with CLIENT_TIMEOUT', async () => {
      const server = await h.server();
      const client = h.client(server);
      const nacks: ReceivedEvent[] = [];
      const processed: InitiationProcessedEvent[] = [];
      client.on('initiation:processed', (e) => processed.push(e));
      const reply = client.request(
        'Test.slow',
        't',
        {},
        { timeout: 150, nackCallback: (e) => nacks.push(e) },
      );
      const { connection } = await establish(server);
      expect(await connection.next('REQUEST')).to.include({ to: 150 });
      const error = await expectRejection(reply, ReplyError, 'CLIENT_TIMEOUT');
      expect(error.event.type).to.equal('TIMEOUT');
      expect(nacks.map((e) => e.type)).to.deep.equal(['TIMEOUT']);
      // A late reply is ACKed (the server wants its outbox row gone) but completes nothing.
      connection.send({ t: 'RESOLVE', cmid: '0', tid: 't', smid: 'LATE' });
      expect(await connection.next('ACK')).to.deep.equal({ t: 'ACK', smid: 'LATE' });
      expect(processed.map((e) => e.replyType)).to.deep.equal(['TIMEOUT']);
      expect(client.outstandingInitiations).to.equal(0);
    });

    it('issues initiation:processed before settling the reply promise, with the reply event', async () => {
      const server = await h.server();
      const client = h.client(server);
      const order: string[] = [];
      client.on('initiation:processed', (e) => order.push(`processed:${e.replyType}`));
      const reply = client.request('Test.single', 't', {}).then((e) => order.push(`reply:${e.type}`));
      const { connection } = await establish(server);
      await connection.next('REQUEST');
      connection.send({ t: 'ACK', cmid: '0' });
      connection.send({ t: 'RESOLVE', cmid: '0', tid: 't', smid: 'X' });
      await reply;
      expect(order).to.deep.equal(['processed:RESOLVE', 'reply:RESOLVE']);
      const [event] = client.initiations;
      expect(event).to.include({ kind: 'REQUEST', replyType: 'RESOLVE' });
      expect(event!.requestRoundTripMs).to.be.at.least(event!.acknowledgeRoundTripMs!);
    });

    it('resolves debug information on replies when debug was requested', async () => {
      const server = await h.server();
      const client = h.client(server, { debug: 3 });
      const reply = client.request('Test.single', 't', {});
      const { connection } = await establish(server);
      expect(await connection.next('REQUEST')).to.include({ rd: 3 });
      connection.send({
        t: 'RESOLVE',
        cmid: '0',
        tid: 't',
        debug: { resd: 3, cmrts: 10, cmrnn: 'node-a', mscts: 12, mscnn: 'node-a' },
      });
      const { debug } = await reply;
      expect(debug).to.deep.include({
        requested: 3,
        resolved: 3,
        clientMessageReceived: 10,
        clientMessageReceivedNodename: 'node-a',
        messageSentToClient: 12,
        messageSentToClientNodename: 'node-a',
      });
      expect(debug!.clientMessageSent).to.be.a('number');
    });
  });

  describe('RETRY', () => {
    it('resends with the same cmid after the back-off, then resolves on ACK', async () => {
      const server = await h.server();
      const client = h.client(server, { retryDelayBaseMs: 40, retryDelayJitterMs: 0 });
      const sent = client.send('Test.single', 't', { n: 1 });
      const { connection } = await establish(server);
      const first = await connection.next('SEND');
      const retriedAt = Date.now();
      connection.send({ t: 'RETRY', cmid: first.cmid, desc: 'store unavailable' });
      const second = await connection.next('SEND');
      // attempt 2 waits 2^0 × base.
      expect(Date.now() - retriedAt).to.be.at.least(35);
      expect(second).to.deep.equal(first);
      connection.send({ t: 'RETRY', cmid: first.cmid });
      expect(await connection.next('SEND')).to.deep.equal(first);
      connection.send({ t: 'ACK', cmid: first.cmid });
      expect((await sent).type).to.equal('ACK');
    });

    it('gives up after maxSendAttempts with CLIENT_ATTEMPTS_EXHAUSTED', async () => {
      const server = await h.server();
      const client = h.client(server, { maxSendAttempts: 3, retryDelayBaseMs: 5, retryDelayJitterMs: 0 });
      const reply = client.request('Test.single', 't', {});
      const { connection } = await establish(server);
      for (let i = 0; i < 3; i++) {
        const request = await connection.next('REQUEST');
        connection.send({ t: 'RETRY', cmid: request.cmid });
      }
      const error = await expectRejection(reply, ReplyError, 'CLIENT_ATTEMPTS_EXHAUSTED');
      expect(error.event.type).to.equal('ATTEMPTS_EXHAUSTED');
      await quietPeriod(50);
      expect(connection.all('REQUEST')).to.have.length(3);
    });
  });

  describe('#requestReplyTo()', () => {
    it('resolves on ACK, then delivers the reply to the terminator with the correlation information', async () => {
      const server = await h.server();
      const client = h.client(server);
      const order: string[] = [];
      const replies: unknown[] = [];
      const delivered = new Promise<void>((resolve) => {
        client.terminator('Client.replyTo', (event) => {
          order.push('terminator');
          replies.push([event.type, event.data, event.correlationInformation]);
          resolve();
        });
      });
      const correlation = { orderId: 42, apply: () => 1 };
      const received = client
        .requestReplyTo('Test.single', 't', { q: 1 }, 'Client.replyTo', correlation)
        .then((e) => order.push(`received:${e.type}`));
      const { connection } = await establish(server);
      const request = await connection.next('REQUEST');
      expect(request).to.not.have.property('correlationInformation');
      connection.send({ t: 'RESOLVE', cmid: request.cmid, tid: 't', smid: 'R1', msg: { a: 1 } });
      await Promise.all([received, delivered]);
      await connection.next('ACK');
      expect(order).to.deep.equal(['received:ACK', 'terminator']);
      expect(replies).to.deep.equal([['RESOLVE', { a: 1 }, correlation]]);
    });

    it('sends REJECT and TIMEOUT to the terminator reject callback', async () => {
      const server = await h.server();
      const client = h.client(server);
      const rejected: string[] = [];
      const done = new Promise<void>((resolve) => {
        client.terminator(
          'Client.replyTo',
          () => rejected.push('resolve!?'),
          (event) => {
            rejected.push(`${event.type}:${String(event.correlationInformation)}`);
            if (rejected.length === 2) resolve();
          },
        );
      });
      void client.requestReplyTo('Test.reject', 't1', {}, 'Client.replyTo', 'c1');
      void client
        .requestReplyTo('Test.slow', 't2', {}, 'Client.replyTo', 'c2', { timeout: 100 })
        .catch(() => {});
      const { connection } = await establish(server);
      await connection.next('REQUEST');
      connection.send({ t: 'REJECT', cmid: '0', tid: 't1', msg: 'nope' });
      await done;
      expect(rejected).to.deep.equal(['REJECT:c1', 'TIMEOUT:c2']);
    });

    it('throws ClientUsageError for an unregistered reply terminator', async () => {
      const server = await h.server();
      const client = h.client(server);
      expect(() => client.requestReplyTo('e', 't', {}, 'Nope', undefined))
        .to.throw()
        .with.property('code', 'CLIENT_ILLEGAL_ARGUMENT');
    });
  });
});
