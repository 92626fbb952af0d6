import { expect } from 'chai';
import { connectSession, describeEachServerEnv, waitAnswered } from './serverTestKit.ts';

describeEachServerEnv('MatsSocketServer server-initiated SEND and REQUEST', { nodes: 1 }, (ctx) => {
  const node = () => ctx().cluster.nodes[0]!;

  it('send() inside an incoming handler: stored with the handling, delivered, ACK → ACK2', async () => {
    const { client } = await connectSession(node().url);
    client.send([{ t: 'SEND', eid: 'Test.server.send.inHandler', tid: 'ih', cmid: 1, msg: { number: 42 } }]);
    const send = await client.nextOfType('SEND');
    expect(send).to.include({ eid: 'ClientSide.terminator', tid: 'ih:inHandler' });
    expect(send.smid).to.be.a('string').with.length(12);
    expect(send.msg).to.deep.equal({ number: 42 });
    client.send([{ t: 'ACK', smid: send.smid }]);
    expect(await client.nextOfType('ACK2')).to.deep.equal({ t: 'ACK2', smid: send.smid });
    await client.close(4000, 'done');
  });

  it('send() inside a Mats stage joins the stage transaction', async () => {
    const { client } = await connectSession(node().url);
    client.send([{ t: 'SEND', eid: 'Test.server.send.matsStage', tid: 'ms', cmid: 1, msg: { number: 7 } }]);
    const send = await client.nextOfType('SEND');
    expect(send).to.include({ eid: 'ClientSide.terminator' });
    expect(send.tid).to.match(/fromStage$/);
    expect(send.msg).to.deep.include({ number: 7, sleepTime: 1 });
    await client.close(4000, 'done');
  });

  it('send() outside any handler; a gone session reports false', async () => {
    const { client, sid } = await connectSession(node().url);
    expect(await node().server.send(sid, 'outside', 'ClientSide.terminator', { x: 1 })).to.equal(true);
    const send = await client.nextOfType('SEND');
    expect(send).to.include({ tid: 'outside', eid: 'ClientSide.terminator' });
    expect(await node().server.send('NoSuchSession000', 'outside', 'ClientSide.terminator', {})).to.equal(
      false,
    );
    await client.close(4000, 'done');
  });

  it('messages of one session are delivered in stored order', async () => {
    const { client, sid } = await connectSession(node().url);
    for (let i = 0; i < 30; i++) await node().server.send(sid, `order-${i}`, 'ClientSide.terminator', i);
    const received: unknown[] = [];
    while (received.length < 30) {
      const e = await client.nextOfType('SEND');
      received.push(e.msg);
      client.send([{ t: 'ACK', smid: e.smid }]);
    }
    expect(received).to.deep.equal([...Array(30).keys()]);
    await client.close(4000, 'done');
  });

  it('request(): the client RESOLVE reaches the reply terminator with the correlation; a duplicate is "dupe RESOLVE"', async () => {
    const { client, sid } = await connectSession(node().url);
    client.send([{ t: 'SEND', eid: 'Test.server.request.direct', tid: 'rq', cmid: 1, msg: { number: 5 } }]);
    const request = await client.nextOfType('REQUEST');
    expect(request).to.include({ eid: 'ClientSide.endpoint', tid: 'rq' });
    expect(request.msg).to.deep.equal({ number: 5 });
    client.send([{ t: 'ACK', smid: request.smid }]);
    client.send([{ t: 'RESOLVE', smid: request.smid, tid: 'rq', cmid: 2, msg: { answer: true } }]);
    await waitAnswered(client, 'ACK', ['2']);
    const seen = await ctx().recorder.waitFor(
      (s) => s.sessionId === sid && s.endpointId === 'Test.replyReceiver',
    );
    expect(seen.messageType).to.equal('RESOLVE');
    expect(seen.message).to.deep.equal({ answer: true });
    expect(seen.traceId).to.equal('rq');
    expect(seen.correlationString).to.equal('CorrelationString');
    expect(Buffer.from(seen.correlationBinary!).toString()).to.equal('CorrelationBinary');
    client.send([{ t: 'RESOLVE', smid: request.smid, tid: 'rq', cmid: 3, msg: {} }]);
    expect(await client.next((e) => e.t === 'ACK' && e.cmid === '3')).to.deep.equal({
      t: 'ACK',
      cmid: '3',
      desc: 'dupe RESOLVE',
    });
    await client.close(4000, 'done');
  });

  it('request() inside a Mats stage: the REQUEST reaches the client, its RESOLVE the reply terminator', async () => {
    const { client, sid } = await connectSession(node().url);
    client.send([{ t: 'SEND', eid: 'Test.server.request.viaMats', tid: 'vm', cmid: 1, msg: { number: 3 } }]);
    const request = await client.nextOfType('REQUEST');
    expect(request).to.include({ eid: 'ClientSide.endpoint', tid: 'vm' });
    client.send([
      { t: 'ACK', smid: request.smid },
      { t: 'REJECT', smid: request.smid, tid: 'vm', cmid: 2, msg: 'no' },
    ]);
    const seen = await ctx().recorder.waitFor(
      (s) => s.sessionId === sid && s.correlationString === 'viaMats',
    );
    expect(seen).to.include({ messageType: 'REJECT', message: 'no', traceId: 'vm' });
    await client.close(4000, 'done');
  });

  it('request(): a client NACK tells the reply terminator NACK with the description (BR-4)', async () => {
    const { client, sid } = await connectSession(node().url);
    client.send([{ t: 'SEND', eid: 'Test.server.request.direct', tid: 'nk', cmid: 1, msg: {} }]);
    const request = await client.nextOfType('REQUEST');
    client.send([{ t: 'NACK', smid: request.smid, desc: 'no such client endpoint' }]);
    expect(await client.nextOfType('ACK2')).to.deep.equal({ t: 'ACK2', smid: request.smid });
    const seen = await ctx().recorder.waitFor(
      (s) => s.sessionId === sid && s.endpointId === 'Test.replyReceiver' && s.messageType === 'NACK',
    );
    expect(seen.description).to.equal('no such client endpoint');
    expect(seen.correlationString).to.equal('CorrelationString');
    await client.close(4000, 'done');
  });

  it('request(): an expired request is removed from the outbox and TIMEOUT reaches the terminator (BR-4)', async () => {
    const { client, sid } = await connectSession(node().url);
    client.terminate();
    await node().server.request(
      sid,
      'to-trace',
      'ClientSide.endpoint',
      { q: 1 },
      'Test.replyReceiver',
      'corr',
      undefined,
      {
        timeoutMs: 1,
      },
    );
    await new Promise((r) => setTimeout(r, 5));
    await node().server.runJobNow('requestTimeout');
    const seen = await ctx().recorder.waitFor(
      (s) => s.sessionId === sid && s.endpointId === 'Test.replyReceiver' && s.messageType === 'TIMEOUT',
    );
    expect(seen.traceId).to.equal('to-trace');
    expect(seen.correlationString).to.equal('corr');
    // Resume: the expired request is not delivered.
    const { client: again } = await connectSession(node().url, 'standard', { sid });
    again.send([{ t: 'PING', x: 'b' }]);
    await again.nextOfType('PONG');
    expect(again.frames.flat().filter((e) => e.t === 'REQUEST')).to.have.length(0);
    await again.close(4000, 'done');
  });

  it('request timeouts: one correlation that fails does not stop the others (BR-4)', async () => {
    const { client, sid } = await connectSession(node().url);
    client.terminate();
    for (const trace of ['to-a', 'to-b', 'to-c'])
      await node().server.request(
        sid,
        trace,
        'ClientSide.endpoint',
        {},
        'Test.replyReceiver',
        trace,
        undefined,
        {
          timeoutMs: 1,
        },
      );
    await new Promise((r) => setTimeout(r, 5));
    const store = node().store;
    const original = store.getAndDeleteRequestCorrelation.bind(store);
    let calls = 0;
    store.getAndDeleteRequestCorrelation = (...args) =>
      ++calls === 1 ? Promise.reject(new Error('simulated failure of one correlation')) : original(...args);
    try {
      await node().server.runJobNow('requestTimeout');
    } finally {
      store.getAndDeleteRequestCorrelation = original;
    }
    const timedOut = ctx()
      .recorder.seen.filter((s) => s.sessionId === sid && s.messageType === 'TIMEOUT')
      .map((s) => s.correlationString);
    expect(timedOut).to.have.length(2);
    // The failed one is timed out by the next run.
    await node().server.runJobNow('requestTimeout');
    await ctx().recorder.waitFor(
      (s) => s.sessionId === sid && s.messageType === 'TIMEOUT' && !timedOut.includes(s.correlationString),
    );
  });

  it('request() with an unregistered reply terminator throws SERVER_ILLEGAL_CALL', async () => {
    let error: unknown;
    try {
      await node().server.request('x', 't', 'ClientSide.endpoint', {}, 'No.such.terminator');
    } catch (err) {
      error = err;
    }
    expect(error).to.have.property('code', 'SERVER_ILLEGAL_CALL');
  });
});
