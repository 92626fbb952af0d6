import { expect } from 'chai';
import { RawClient } from '../../helpers/rawClient.ts';
import { testAuth } from '../../../harness/startTestCluster.ts';
import { connectSession, describeEachServerEnv, waitAnswered } from './serverTestKit.ts';

describeEachServerEnv('MatsSocketServer authentication lifecycle and debug options', { nodes: 1 }, (ctx) => {
  const url = (): string => ctx().cluster.nodes[0]!.url;

  it('incoming REAUTH: holds the message, processes it after a good AUTH, without RETRY', async () => {
    const { client } = await connectSession(url());
    client.send([
      {
        t: 'SEND',
        eid: 'Test.ignoreInIncomingHandler',
        tid: 'h',
        cmid: 1,
        auth: testAuth('fail_reevaluate'),
      },
    ]);
    await client.nextOfType('REAUTH');
    // The same bad value again: no second REAUTH; a new bad value: REAUTH again.
    client.send([{ t: 'SEND', eid: 'Test.ignoreInIncomingHandler', tid: 'h', cmid: 2 }]);
    client.send([{ t: 'AUTH', auth: 'TestAuth:fail_reevaluate:123' }]);
    await client.nextOfType('REAUTH');
    client.send([{ t: 'AUTH', auth: testAuth('renewed') }]);
    await waitAnswered(client, 'ACK', ['1', '2']);
    expect(client.frames.flat().filter((e) => e.t === 'REAUTH')).to.have.length(2);
    expect(client.frames.flat().filter((e) => e.t === 'RETRY')).to.have.length(0);
    await client.close(4000, 'done');
  });

  it('incoming REAUTH for an expired authorization', async () => {
    const expires = Date.now() + 300;
    const client = await RawClient.connect(url());
    await client.hello(testAuth('expiring', expires));
    await new Promise((r) => setTimeout(r, Math.max(0, expires - Date.now() + 20)));
    client.send([{ t: 'REQUEST', eid: 'Test.resolveInIncomingHandler', tid: 'e', cmid: 1, msg: {} }]);
    await client.nextOfType('REAUTH');
    client.send([{ t: 'AUTH', auth: testAuth('expiring') }]);
    expect((await client.nextOfType('RESOLVE')).cmid).to.equal('1');
    await client.close(4000, 'done');
  });

  it('control messages need no valid authorization (no REAUTH for PING/ACK2 after expiry)', async () => {
    const expires = Date.now() + 200;
    const client = await RawClient.connect(url());
    await client.hello(testAuth('expiring2', expires));
    await new Promise((r) => setTimeout(r, Math.max(0, expires - Date.now() + 20)));
    client.send([
      { t: 'PING', x: '1' },
      { t: 'ACK2', cmid: 'x' },
    ]);
    await client.nextOfType('PONG');
    expect(client.frames.flat().filter((e) => e.t === 'REAUTH')).to.have.length(0);
    await client.close(4000, 'done');
  });

  it('outgoing REAUTH: holds outbox delivery until a good authorization arrives', async () => {
    const client = await RawClient.connect(url());
    await client.hello(testAuth('fail_outgoing'));
    client.send([{ t: 'REQUEST', eid: 'Test.single', tid: 'o', cmid: 1, msg: { number: 1, string: 'o' } }]);
    await client.nextOfType('REAUTH');
    expect(client.frames.flat().filter((e) => e.t === 'RESOLVE')).to.have.length(0);
    client.send([{ t: 'AUTH', auth: testAuth('standard') }]);
    expect((await client.nextOfType('RESOLVE')).cmid).to.equal('1');
    await client.close(4000, 'done');
  });

  it('the reply terminator of a server request sees the authorization of the answering frame (renewAuth)', async () => {
    const { client, sid } = await connectSession(url(), 'renew');
    client.send([{ t: 'SEND', eid: 'Test.server.request.direct', tid: 'ra', cmid: 1, msg: {} }]);
    const request = await client.nextOfType('REQUEST');
    const newAuth = testAuth('renewedUser');
    client.send([
      { t: 'ACK', smid: request.smid },
      { t: 'RESOLVE', smid: request.smid, tid: request.tid, cmid: 2, msg: {}, auth: newAuth },
    ]);
    const seen = await ctx().recorder.waitFor(
      (s) => s.sessionId === sid && s.endpointId === 'Test.replyReceiver',
    );
    expect(seen.authorizationValue).to.equal(newAuth);
    await client.close(4000, 'done');
  });

  describe('debug options', () => {
    it('forwarded REQUEST replies carry the requested and allowed fields', async () => {
      const { client } = await connectSession(url(), 'enableAllDebugOptions');
      client.send([
        { t: 'REQUEST', eid: 'Test.single', tid: 'd', cmid: 1, rd: 3, msg: { number: 1, string: 'x' } },
        { t: 'REQUEST', eid: 'Test.single', tid: 'd', cmid: 2, rd: 1, msg: { number: 1, string: 'x' } },
        { t: 'REQUEST', eid: 'Test.single', tid: 'd', cmid: 3, rd: 0, msg: { number: 1, string: 'x' } },
      ]);
      const all = await client.next((e) => e.t === 'RESOLVE' && e.cmid === '1');
      expect(Object.keys(all.debug as object).sort()).to.deep.equal(
        ['resd', 'cmrts', 'cmrnn', 'mmsts', 'mmrrts', 'mmrrnn', 'mscts', 'mscnn'].sort(),
      );
      expect((all.debug as { resd: number }).resd).to.equal(3);
      const ts = await client.next((e) => e.t === 'RESOLVE' && e.cmid === '2');
      expect(Object.keys(ts.debug as object).sort()).to.deep.equal(
        ['resd', 'cmrts', 'mmsts', 'mmrrts', 'mscts'].sort(),
      );
      const none = await client.next((e) => e.t === 'RESOLVE' && e.cmid === '3');
      expect(none).to.not.have.property('debug');
      await client.close(4000, 'done');
    });

    it('insta replies carry resd, cmrts/mscts, cmrnn/mscnn', async () => {
      const { client } = await connectSession(url(), 'enableAllDebugOptions');
      client.send([
        { t: 'REQUEST', eid: 'Test.resolveInIncomingHandler', tid: 'i', cmid: 1, rd: 2, msg: {} },
      ]);
      const r = await client.nextOfType('RESOLVE');
      expect(r.debug).to.deep.equal({
        resd: 2,
        cmrnn: ctx().cluster.nodes[0]!.nodeName,
        mscnn: ctx().cluster.nodes[0]!.nodeName,
      });
      await client.close(4000, 'done');
    });

    it('no debug for a user without allowed options', async () => {
      const { client } = await connectSession(url(), 'standard');
      client.send([
        { t: 'REQUEST', eid: 'Test.resolveInIncomingHandler', tid: 'i', cmid: 1, rd: 3, msg: {} },
      ]);
      expect(await client.nextOfType('RESOLVE')).to.not.have.property('debug');
      await client.close(4000, 'done');
    });

    it('server-initiated messages use the last rd of the session', async () => {
      const { client } = await connectSession(url(), 'enableAllDebugOptions');
      client.send([
        { t: 'SEND', eid: 'Test.server.send.inHandler', tid: 's1', cmid: 1, rd: 1, msg: { n: 1 } },
      ]);
      const first = await client.nextOfType('SEND');
      expect(Object.keys(first.debug as object).sort()).to.deep.equal(['mscts', 'resd', 'smcts']);
      client.send([{ t: 'ACK', smid: first.smid }]);
      client.send([
        { t: 'SEND', eid: 'Test.server.send.inHandler', tid: 's2', cmid: 2, rd: 0, msg: { n: 2 } },
      ]);
      const second = await client.next((e) => e.t === 'SEND' && e.tid === 's2:inHandler');
      expect(second).to.not.have.property('debug');
      await client.close(4000, 'done');
    });
  });
});
