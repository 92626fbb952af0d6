import { expect } from 'chai';
import { RawClient } from '../../helpers/rawClient.ts';
import { testAuth } from '../../../harness/startTestCluster.ts';
import { connectSession, describeEachServerEnv } from './serverTestKit.ts';

describeEachServerEnv(
  'MatsSocketServer sessions: duplicates, resume, takeover, close',
  { nodes: 1 },
  (ctx) => {
    const url = (): string => ctx().cluster.nodes[0]!.url;

    it('does not run the handler again for a duplicate cmid; answers dupe ACK / the stored insta reply', async () => {
      const { client, sid } = await connectSession(url());
      const { recorder } = ctx();
      client.send([{ t: 'SEND', eid: 'Test.ignoreInIncomingHandler', tid: 'd1', cmid: 1 }]);
      expect(await client.nextOfType('ACK')).to.deep.equal({ t: 'ACK', cmid: '1' });
      client.send([{ t: 'SEND', eid: 'Test.ignoreInIncomingHandler', tid: 'd1', cmid: 1 }]);
      expect(await client.nextOfType('ACK')).to.deep.equal({ t: 'ACK', cmid: '1', desc: 'dupe SEND ACK' });
      client.send([
        {
          t: 'REQUEST',
          eid: 'Test.resolveInIncomingHandler',
          tid: 'd2',
          cmid: 2,
          msg: { number: 9, string: 'x' },
        },
      ]);
      const first = await client.nextOfType('RESOLVE');
      client.send([
        {
          t: 'REQUEST',
          eid: 'Test.resolveInIncomingHandler',
          tid: 'd2',
          cmid: 2,
          msg: { number: 9, string: 'x' },
        },
      ]);
      const dupe = await client.nextOfType('RESOLVE');
      expect(dupe.desc).to.equal('dupe REQUEST stored');
      expect(dupe.msg).to.deep.equal(first.msg);
      expect(recorder.seen.filter((s) => s.sessionId === sid && s.traceId === 'd1')).to.have.length(1);
      expect(recorder.seen.filter((s) => s.sessionId === sid && s.traceId === 'd2')).to.have.length(1);
      // After ACK2 the inbox row is gone: the same cmid is then new again.
      client.send([{ t: 'ACK2', ids: ['1', 2] }]);
      client.send([{ t: 'PING', x: 'barrier' }]);
      await client.nextOfType('PONG');
      await client.close();
    });

    it('a copy of a message still in its handler waits for it and is then a duplicate', async () => {
      const { client, sid } = await connectSession(url());
      const send = {
        t: 'SEND',
        eid: 'Test.slow',
        tid: 'inflight',
        cmid: 1,
        msg: { sleepIncoming: 100, number: 1, string: 's' },
      };
      client.send([send, send]);
      await client.next((e) => e.t === 'ACK' && e.cmid === '1' && e.desc === undefined);
      expect(await client.next((e) => e.t === 'ACK' && e.cmid === '1')).to.deep.equal({
        t: 'ACK',
        cmid: '1',
        desc: 'dupe SEND ACK',
      });
      expect(
        ctx().recorder.seen.filter((s) => s.sessionId === sid && s.traceId === 'inflight'),
      ).to.have.length(1);
      await client.close();
    });

    it('a forwarded REQUEST sent twice is forwarded once; the second gets "dupe REQUEST ACK"', async () => {
      const { client, sid } = await connectSession(url());
      const msg = { number: 1, string: 'twice' };
      client.send([{ t: 'REQUEST', eid: 'Test.single', tid: 'tw', cmid: 5, msg }]);
      const resolve = await client.nextOfType('RESOLVE');
      client.send([{ t: 'REQUEST', eid: 'Test.single', tid: 'tw', cmid: 5, msg }]);
      // (The REQUEST's own ACK may have gone out before a slow reply: look for the dupe answer.)
      expect(await client.next((e) => e.t === 'ACK' && e.desc !== undefined)).to.deep.equal({
        t: 'ACK',
        cmid: '5',
        desc: 'dupe REQUEST ACK',
      });
      expect(ctx().recorder.seen.filter((s) => s.sessionId === sid && s.traceId === 'tw')).to.have.length(1);
      expect(resolve.cmid).to.equal('5');
      await client.close();
    });

    it('delivers a reply that arrived while disconnected after resume, exactly once, and re-sends un-ACKed ones', async () => {
      const { client, sid } = await connectSession(url());
      client.send([
        {
          t: 'REQUEST',
          eid: 'Test.slow',
          tid: 'slow',
          cmid: 1,
          msg: { number: 1, string: 's', sleepTime: 150 },
        },
      ]);
      // Wait until the server took responsibility (the ACK), then drop the connection (1006 → deregister).
      await client.nextOfType('ACK');
      client.terminate();
      const again = await RawClient.connect(url());
      const welcome = await again.hello(testAuth('standard'), { sid });
      expect(welcome.sid).to.equal(sid);
      expect(welcome.desc).to.equal('reconnected - existing in store');
      const resolve = await again.nextOfType('RESOLVE');
      expect(resolve.msg).to.deep.equal({ number: 1, string: 's:FromSlow', sleepTime: 150 });
      // Not ACKed: a second resume gets it again with the same smid.
      again.terminate();
      const third = await RawClient.connect(url());
      await third.hello(testAuth('standard'), { sid });
      const redelivered = await third.nextOfType('RESOLVE');
      expect(redelivered.smid).to.equal(resolve.smid);
      third.send([{ t: 'ACK', smid: redelivered.smid }]);
      expect(await third.nextOfType('ACK2')).to.deep.equal({ t: 'ACK2', smid: resolve.smid });
      third.terminate();
      const fourth = await RawClient.connect(url());
      await fourth.hello(testAuth('standard'), { sid });
      fourth.send([{ t: 'PING', x: 'b' }]);
      await fourth.nextOfType('PONG');
      expect(fourth.frames.flat().filter((e) => e.t === 'RESOLVE')).to.have.length(0);
      await fourth.close(4000, 'done');
    });

    it('takeover on the same node: the old connection gets 4003 "same MatsSocketSessionId"', async () => {
      const { client, sid } = await connectSession(url());
      const second = await RawClient.connect(url());
      const welcome = await second.hello(testAuth('standard'), { sid });
      expect(welcome.desc).to.equal('reconnected - existing local');
      const closed = await client.closed();
      expect(closed.code).to.equal(4003);
      expect(closed.reason).to.include('same MatsSocketSessionId');
      second.send([{ t: 'REQUEST', eid: 'Test.resolveInIncomingHandler', tid: 'x', cmid: 1, msg: {} }]);
      expect((await second.nextOfType('RESOLVE')).cmid).to.equal('1');
      await second.close(4000, 'done');
    });

    it('resume by another user closes 1008 "does not match" and leaves the session alone', async () => {
      const { client, sid } = await connectSession(url(), 'alice');
      client.terminate();
      const mallory = await RawClient.connect(url());
      mallory.send([{ t: 'HELLO', clv: 'c', an: 'a', av: '1', auth: testAuth('mallory'), sid }]);
      const closed = await mallory.closed();
      expect(closed.code).to.equal(1008);
      expect(closed.reason).to.include('does not match');
      const alice = await RawClient.connect(url());
      expect((await alice.hello(testAuth('alice'), { sid })).sid).to.equal(sid);
      await alice.close(4000, 'done');
    });

    it('resume of an unknown session closes 4001', async () => {
      const client = await RawClient.connect(url());
      client.send([
        { t: 'HELLO', clv: 'c', an: 'a', av: '1', auth: testAuth('standard'), sid: 'NoSuchSession123' },
      ]);
      const closed = await client.closed();
      expect(closed.code).to.equal(4001);
      expect(closed.reason).to.not.equal('');
    });

    for (const [code, terminated] of [
      [4000, true],
      [1001, true],
      [4002, false],
      [1000, false],
    ] as const) {
      it(`client close ${code} ${terminated ? 'terminates' : 'only deregisters'} the session`, async () => {
        const { client, sid } = await connectSession(url());
        const removed = new Promise<string>((resolve) => {
          const off = ctx().cluster.nodes[0]!.server.on('sessionRemoved', (e) => {
            if (e.sessionId !== sid) return;
            off();
            resolve(e.type);
          });
        });
        await client.close(code, 'bye');
        expect(await removed).to.equal(terminated ? 'CLOSE' : 'DEREGISTER');
        const again = await RawClient.connect(url());
        again.send([{ t: 'HELLO', clv: 'c', an: 'a', av: '1', auth: testAuth('standard'), sid }]);
        if (terminated) expect((await again.closed()).code).to.equal(4001);
        else {
          expect((await again.nextOfType('WELCOME')).sid).to.equal(sid);
          await again.close(4000, 'done');
        }
      });
    }

    it('a dropped TCP connection (1006) only deregisters', async () => {
      const { client, sid } = await connectSession(url());
      client.terminate();
      const again = await RawClient.connect(url());
      expect((await again.hello(testAuth('standard'), { sid })).sid).to.equal(sid);
      await again.close(4000, 'done');
    });

    it('server closeSession → 4000 "Server Side: ..." and the session is gone', async () => {
      const { client, sid } = await connectSession(url());
      client.send([{ t: 'SEND', eid: 'Test.closeThisSession', tid: 'c', cmid: 1 }]);
      const closed = await client.closed();
      expect(closed.code).to.equal(4000);
      expect(closed.reason).to.equal('Server Side: closeThisSession');
      const again = await RawClient.connect(url());
      again.send([{ t: 'HELLO', clv: 'c', an: 'a', av: '1', auth: testAuth('standard'), sid }]);
      expect((await again.closed()).code).to.equal(4001);
    });

    it('closeSession: the session is gone from the store before the client sees 4000 (a quick reconnect gets 4001)', async () => {
      const node = ctx().cluster.nodes[0]!;
      const store = node.store;
      const original = store.closeSessionOfConnection.bind(store);
      // A slow store: without the ordering, the client's reconnect resumed the session before the close reached
      // the store, and the close (guarded by the old connection's id) then left the resumed session alive.
      store.closeSessionOfConnection = async (...args) => {
        await new Promise((r) => setTimeout(r, 300));
        return original(...args);
      };
      try {
        const { client, sid } = await connectSession(url());
        const closing = node.server.closeSession(sid, 'slow store');
        expect((await client.closed()).code).to.equal(4000);
        const again = await RawClient.connect(url());
        again.send([{ t: 'HELLO', clv: 'c', an: 'a', av: '1', auth: testAuth('standard'), sid }]);
        expect((await again.closed()).code).to.equal(4001);
        await closing;
      } finally {
        store.closeSessionOfConnection = original;
      }
    });

    it('closeSession: a store delete that fails still closes the connection with 4000 (logged, not hung)', async () => {
      const node = ctx().cluster.nodes[0]!;
      const store = node.store;
      const original = store.closeSessionOfConnection.bind(store);
      store.closeSessionOfConnection = () => Promise.reject(new Error('database down'));
      try {
        const { client, sid } = await connectSession(url());
        const closing = node.server.closeSession(sid, 'store down');
        const closed = await client.closed();
        expect(closed).to.include({ code: 4000, reason: 'Server Side: store down' });
        await closing;
      } finally {
        store.closeSessionOfConnection = original;
      }
    });

    it('closeSession of a deregistered session deletes it from the store', async () => {
      const { client, sid } = await connectSession(url());
      client.terminate();
      const server = ctx().cluster.nodes[0]!.server;
      await waitFor(async () => (await server.getSessions({ onlyActive: true })).every((s) => s.id !== sid));
      await server.closeSession(sid, 'gone');
      expect((await server.getSessions()).map((s) => s.id)).to.not.include(sid);
    });

    it('introspection: getActiveSessions, getSessions and getSessionsCount', async () => {
      const { client, sid } = await connectSession(url(), 'introspect');
      const server = ctx().cluster.nodes[0]!.server;
      const active = server.getActiveSessions().find((s) => s.sessionId === sid);
      expect(active?.userId).to.equal('introspect');
      expect(active?.lastEnvelopes.map((e) => e.t)).to.include.members(['HELLO', 'WELCOME']);
      expect(await server.getSessionsCount({ userId: 'introspect' })).to.equal(1);
      const [info] = await server.getSessions({ userId: 'introspect' });
      expect(info).to.include({ id: sid, uid: 'introspect', an: 'TestApp', nn: server.nodeName });
      await client.close(4000, 'done');
    });
  },
);

async function waitFor(check: () => Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
