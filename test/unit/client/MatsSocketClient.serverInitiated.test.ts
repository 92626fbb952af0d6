import { expect } from 'chai';
import type { MessageEvent } from '../../../src/client/clientEvents.ts';
import { establish, nextEvent, useHarness } from './harness.ts';

describe('MatsSocketClient: server-initiated SEND and REQUEST', () => {
  const h = useHarness();

  describe('SEND to a client terminator', () => {
    it('invokes the terminator once, ACKs, de-duplicates a redelivered smid until ACK2', async () => {
      const server = await h.server();
      const client = h.client(server);
      const received: MessageEvent[] = [];
      client.terminator('ClientSide.terminator', (event) => received.push(event));
      void client.send('Test.single', 't', {});
      const { connection } = await establish(server);
      connection.send({
        t: 'SEND',
        smid: 'Zt4mQ1a9LcPe',
        eid: 'ClientSide.terminator',
        tid: 't4',
        msg: { n: 1 },
      });
      expect(await connection.next('ACK')).to.deep.equal({ t: 'ACK', smid: 'Zt4mQ1a9LcPe' });
      expect(received.map((e) => [e.type, e.data, e.traceId, e.messageId])).to.deep.equal([
        ['SEND', { n: 1 }, 't4', 'Zt4mQ1a9LcPe'],
      ]);

      // Redelivery before ACK2 (e.g. after a resume): ACKed again, not processed again.
      connection.send({
        t: 'SEND',
        smid: 'Zt4mQ1a9LcPe',
        eid: 'ClientSide.terminator',
        tid: 't4',
        msg: { n: 1 },
      });
      expect(await connection.next('ACK')).to.deep.equal({ t: 'ACK', smid: 'Zt4mQ1a9LcPe' });
      expect(received).to.have.length(1);

      // After ACK2 the client has forgotten the smid: the server can never send it again, so a "new" one runs.
      connection.send({ t: 'ACK2', smid: 'Zt4mQ1a9LcPe' });
      connection.send({ t: 'SEND', smid: 'Zt4mQ1a9LcPe', eid: 'ClientSide.terminator', tid: 't5' });
      await connection.next('ACK');
      expect(received.map((e) => e.traceId)).to.deep.equal(['t4', 't5']);
    });

    it('NACKs a SEND to an unknown terminator on its own, with the description', async () => {
      const server = await h.server();
      const client = h.client(server);
      const errors: string[] = [];
      client.on('error', (e) => errors.push(e.type));
      void client.send('Test.single', 't', {});
      const { connection } = await establish(server);
      connection.send({ t: 'SEND', smid: 'S1', eid: 'No.such', tid: 't' });
      expect(await connection.next('NACK')).to.deep.equal({
        t: 'NACK',
        smid: 'S1',
        desc: 'The Client Terminator [No.such] does not exist!',
      });
      expect(errors).to.include('unknown-client-target');
    });

    it('resolves debug information on server-initiated messages', async () => {
      const server = await h.server();
      const client = h.client(server);
      const got = new Promise<MessageEvent>((resolve) => client.terminator('T', resolve));
      void client.send('Test.single', 't', {});
      const { connection } = await establish(server);
      connection.send({
        t: 'SEND',
        smid: 'S1',
        eid: 'T',
        tid: 't',
        debug: { resd: 1, smcts: 100, mscts: 101 },
      });
      const { debug } = await got;
      expect(debug).to.deep.include({ resolved: 1, serverMessageCreated: 100, messageSentToClient: 101 });
      expect(debug).to.not.have.property('requested');
    });
  });

  describe('REQUEST to a client endpoint', () => {
    it('ACKs, RESOLVEs with a new cmid, and sends ACK2 when the server ACKs the reply', async () => {
      const server = await h.server();
      const client = h.client(server);
      client.endpoint('ClientSide.endpoint', (event) => Promise.resolve({ echo: event.data }));
      void client.send('Test.single', 't', {});
      const { connection } = await establish(server);
      const send = await connection.next('SEND');
      connection.send({ t: 'REQUEST', smid: 'Hq0x7', eid: 'ClientSide.endpoint', tid: 't5', msg: 'hi' });
      expect(await connection.next('ACK')).to.deep.equal({ t: 'ACK', smid: 'Hq0x7' });
      const reply = await connection.next('RESOLVE');
      expect(reply).to.deep.equal({ t: 'RESOLVE', smid: 'Hq0x7', tid: 't5', cmid: '1', msg: { echo: 'hi' } });
      expect(Number(reply.cmid)).to.be.greaterThan(Number(send.cmid));
      connection.send({ t: 'ACK', cmid: reply.cmid });
      expect(await connection.next('ACK2')).to.deep.equal({ t: 'ACK2', cmid: '1' });
    });

    it('REJECTs when the endpoint throws or its promise rejects', async () => {
      const server = await h.server();
      const client = h.client(server);
      client.endpoint('Throws', () => {
        throw new TypeError('bad input');
      });
      client.endpoint('Rejects', () => Promise.reject(new Error('later')));
      void client.send('Test.single', 't', {});
      const { connection } = await establish(server);
      connection.send(
        { t: 'REQUEST', smid: 'A', eid: 'Throws', tid: 'ta' },
        { t: 'REQUEST', smid: 'B', eid: 'Rejects', tid: 'tb' },
      );
      const first = await connection.next('REJECT');
      const second = await connection.next('REJECT');
      expect(first).to.deep.include({ smid: 'A', msg: { name: 'TypeError', message: 'bad input' } });
      expect(second).to.deep.include({ smid: 'B', msg: { name: 'Error', message: 'later' } });
    });

    it('NACKs a REQUEST to an unknown endpoint', async () => {
      const server = await h.server();
      const client = h.client(server);
      void client.send('Test.single', 't', {});
      const { connection } = await establish(server);
      connection.send({ t: 'REQUEST', smid: 'R', eid: 'Nope', tid: 't' });
      expect(await connection.next('NACK')).to.deep.equal({
        t: 'NACK',
        smid: 'R',
        desc: 'The Client Endpoint [Nope] does not exist!',
      });
    });

    it('does not run the endpoint again for a redelivered smid', async () => {
      const server = await h.server();
      const client = h.client(server);
      let calls = 0;
      client.endpoint('E', () => ++calls);
      void client.send('Test.single', 't', {});
      const { connection } = await establish(server);
      connection.send({ t: 'REQUEST', smid: 'R', eid: 'E', tid: 't' });
      await connection.next('RESOLVE');
      await connection.next('ACK');
      connection.send({ t: 'REQUEST', smid: 'R', eid: 'E', tid: 't' });
      expect(await connection.next('ACK')).to.deep.equal({ t: 'ACK', smid: 'R' });
      expect(calls).to.equal(1);
      expect(connection.all('RESOLVE')).to.have.length(1);
    });

    it('resends an un-ACKed RESOLVE with its cmid after a reconnect', async () => {
      const server = await h.server();
      const client = h.client(server);
      client.endpoint('E', () => 'answer');
      void client.send('Test.single', 't', {});
      const { connection } = await establish(server, 'SID');
      connection.send({ t: 'ACK', cmid: '0' });
      connection.send({ t: 'REQUEST', smid: 'R', eid: 'E', tid: 't' });
      const reply = await connection.next('RESOLVE');
      await connection.terminate();
      const second = await server.nextConnection();
      expect((await second.welcome('SID')).sid).to.equal('SID');
      expect(await second.next('RESOLVE')).to.deep.equal(reply);
      second.send({ t: 'ACK', cmid: reply.cmid });
      await second.next((e) => e.t === 'ACK2' && (e.cmid === reply.cmid || !!e.ids?.includes(reply.cmid)));
    });
  });

  describe('MatsSocket.renewAuth', () => {
    it('asks for new authorization at once and sends the RESOLVE carrying the new auth', async () => {
      const server = await h.server();
      const client = h.client(server);
      const asked: string[] = [];
      client.setAuthorizationExpiredCallback((event) => {
        asked.push(event.type);
        setTimeout(() => client.setCurrentAuthorization('DummyAuth:renewed:-1'), 20);
      });
      void client.send('Test.single', 't', {});
      const { connection } = await establish(server);
      await connection.next('SEND');
      connection.send({ t: 'REQUEST', smid: 'RA', eid: 'MatsSocket.renewAuth', tid: 'renew' });
      const reply = await connection.next('RESOLVE');
      expect(reply).to.deep.include({ smid: 'RA', tid: 'renew', msg: {} });
      // The pipeline was held until the new value was set: the RESOLVE's frame carries it (on its last envelope).
      const frame = connection.frames.find((f) => f.includes(reply))!;
      expect(frame.at(-1)).to.have.property('auth', 'DummyAuth:renewed:-1');
      expect(asked).to.deep.equal(['REAUTHENTICATE']);
    });

    it('rejects registering ids in the reserved MatsSocket namespace', async () => {
      const server = await h.server();
      const client = h.client(server);
      expect(() => client.endpoint('MatsSocket.renewAuth', () => 1))
        .to.throw()
        .with.property('code', 'CLIENT_ILLEGAL_ARGUMENT');
      expect(() => client.terminator('MatsSocket.x', () => {}))
        .to.throw()
        .with.property('code', 'CLIENT_ILLEGAL_ARGUMENT');
      client.terminator('T', () => {});
      expect(() => client.terminator('T', () => {}))
        .to.throw()
        .with.property('code', 'CLIENT_ILLEGAL_ARGUMENT');
    });
  });

  describe('ACK batching', () => {
    it('folds ACKs of one burst into one ids envelope', async () => {
      const server = await h.server();
      const client = h.client(server);
      client.terminator('T', () => {});
      void client.send('Test.single', 't', {});
      const { connection } = await establish(server);
      connection.send(
        { t: 'SEND', smid: 'a', eid: 'T', tid: 't' },
        { t: 'SEND', smid: 'b', eid: 'T', tid: 't' },
        { t: 'SEND', smid: 'c', eid: 'T', tid: 't' },
      );
      expect(await connection.next('ACK')).to.deep.equal({ t: 'ACK', ids: ['a', 'b', 'c'] });
    });

    it('sends ACKs at once when more than 10 are pending', async () => {
      const server = await h.server();
      const client = h.client(server, { ackDelayMs: 60_000 });
      client.terminator('T', () => {});
      void client.send('Test.single', 't', {});
      const { connection } = await establish(server);
      const smids = Array.from({ length: 11 }, (_, i) => `s${i}`);
      connection.send(...smids.map((smid) => ({ t: 'SEND' as const, smid, eid: 'T', tid: 't' })));
      // With a 60 s ACK delay, only the "more than 10 pending" rule can send this.
      expect(await connection.next('ACK')).to.deep.equal({ t: 'ACK', ids: smids });
    });

    it('folds ACK2s into one envelope, and sends them at once when more than 10 are pending', async () => {
      const server = await h.server();
      const client = h.client(server, { ack2DelayMs: 60_000 });
      const sends = Array.from({ length: 11 }, (_, i) => client.send('Test.single', `t${i}`, {}));
      const { connection } = await establish(server);
      await connection.next('SEND');
      connection.send({ t: 'ACK', ids: sends.map((_, i) => String(i)) });
      await Promise.all(sends);
      expect(await connection.next('ACK2')).to.deep.equal({ t: 'ACK2', ids: sends.map((_, i) => String(i)) });
    });

    it('puts pending ACKs and ACK2s on the next frame the client sends anyway, before their delays', async () => {
      const server = await h.server();
      const client = h.client(server, { ackDelayMs: 60_000, ack2DelayMs: 60_000 });
      client.terminator('T', () => {});
      const first = client.send('Test.single', 't1', {});
      const { connection } = await establish(server);
      const sent = await connection.next('SEND');
      connection.send({ t: 'ACK', cmid: sent.cmid }, { t: 'SEND', smid: 'a', eid: 'T', tid: 't' });
      await first;
      void client.send('Test.single', 't2', {});
      const second = await connection.next((e) => e.t === 'SEND' && e.tid === 't2');
      expect(connection.frameOf(second)).to.deep.equal([
        second,
        { t: 'ACK', smid: 'a' },
        { t: 'ACK2', cmid: sent.cmid },
      ]);
    });

    it('batches within the ack delay, not longer', async () => {
      const server = await h.server();
      const client = h.client(server, { ackDelayMs: 30 });
      client.terminator('T', () => {});
      void client.send('Test.single', 't', {});
      const { connection } = await establish(server);
      const sentAt = Date.now();
      connection.send({ t: 'SEND', smid: 'x', eid: 'T', tid: 't' });
      await connection.next('ACK');
      expect(Date.now() - sentAt).to.be.within(25, 1000);
    });
  });

  it('reports a frame it cannot use as an error event and carries on', async () => {
    const server = await h.server();
    const client = h.client(server);
    void client.send('Test.single', 't', {});
    const { connection } = await establish(server);
    const error = nextEvent(client, 'error', (e) => e.type === 'bad-frame');
    connection.sendRaw('this is not json');
    await error;
    const bad = nextEvent(client, 'error', (e) => e.type === 'bad-envelope');
    connection.sendRaw('[{"t":"FROM_THE_FUTURE"},{"t":"ACK","cmid":0}]');
    await bad;
    expect(await connection.next('ACK2')).to.deep.equal({ t: 'ACK2', cmid: '0' });
  });
});
