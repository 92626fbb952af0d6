import { expect } from 'chai';
import { RawClient } from '../../helpers/rawClient.ts';
import { testAuth } from '../../helpers/startTestCluster.ts';
import { connectSession, describeEachServerEnv } from './serverTestKit.ts';

/** A HELLO naming a session it does not own (protocol.md 8.3) must change nothing for that session. */
describeEachServerEnv('MatsSocketServer session ownership', { nodes: 2 }, (ctx) => {
  const url = (i: number): string => ctx().cluster.nodes[i]!.url;

  /** Mallory's HELLO with Alice's sid on node `i`: refused with 1008 "does not match". */
  async function foreignHello(i: number, sid: string): Promise<void> {
    const mallory = await RawClient.connect(url(i));
    mallory.send([{ t: 'HELLO', clv: 'c', an: 'a', av: '1', auth: testAuth('mallory'), sid }]);
    const closed = await mallory.closed();
    expect(closed.code).to.equal(1008);
    expect(closed.reason).to.include('does not match');
  }

  /** Alice's connection is open, still holds the session in the store, and still gets answers. */
  async function expectUndisturbed(alice: RawClient, sid: string, cmid: number): Promise<void> {
    const node = ctx().cluster.nodes[0]!;
    expect(await node.store.getCurrentRegisteredNodeForSession(sid)).to.include({
      nodename: node.nodeName,
    });
    alice.send([{ t: 'REQUEST', eid: 'Test.resolveInIncomingHandler', tid: `r${cmid}`, cmid, msg: {} }]);
    expect((await alice.nextOfType('RESOLVE')).cmid).to.equal(String(cmid));
    expect(alice.closeInfo).to.equal(undefined);
  }

  it('a foreign HELLO on the node holding the session is refused 1008; the holder keeps its connection', async () => {
    const { client: alice, sid } = await connectSession(url(0), 'alice');
    await foreignHello(0, sid);
    await expectUndisturbed(alice, sid, 1);
    await alice.close(4000, 'done');
  });

  it('a foreign HELLO on another node is refused 1008 and sends no takeover', async () => {
    const { client: alice, sid } = await connectSession(url(0), 'alice');
    await foreignHello(1, sid);
    await expectUndisturbed(alice, sid, 1);
    await alice.close(4000, 'done');
  });

  it('foreign HELLOs racing the holder on its node change nothing either', async () => {
    const { client: alice, sid } = await connectSession(url(0), 'alice');
    await Promise.all([foreignHello(0, sid), foreignHello(0, sid), foreignHello(1, sid)]);
    await expectUndisturbed(alice, sid, 1);
    // The owner can still take the session over on its own node afterwards.
    const again = await RawClient.connect(url(0));
    expect((await again.hello(testAuth('alice'), { sid })).desc).to.equal('reconnected - existing local');
    expect((await alice.closed()).code).to.equal(4003);
    await again.close(4000, 'done');
  });

  for (const code of [4000, 1001]) {
    it(`a superseded connection closing ${code} leaves the session its successor holds (CloseWS lost)`, async () => {
      const { client: old, sid } = await connectSession(url(0), 'alice');
      const [node0, node1] = ctx().cluster.nodes;
      // The resume on node 1 whose takeover notice never reached node 0: the old connection is still open.
      await node1!.store.registerResumedSession({
        sessionId: sid,
        userId: 'alice',
        connectionId: 'successor',
        clientLib: 'c',
        appName: 'a',
        appVersion: '1',
      });
      const removed = new Promise<string>((resolve) => {
        const off = node0!.server.on('sessionRemoved', (e) => {
          if (e.sessionId !== sid) return;
          off();
          resolve(e.type);
        });
      });
      await old.close(code, 'bye');
      expect(await removed).to.equal('DEREGISTER');
      expect(await node0!.store.getCurrentRegisteredNodeForSession(sid)).to.deep.equal({
        sessionId: sid,
        nodename: node1!.nodeName,
        connectionId: 'successor',
      });
      const again = await RawClient.connect(url(1));
      expect((await again.hello(testAuth('alice'), { sid })).sid).to.equal(sid);
      await again.close(4000, 'done');
    });
  }
});
