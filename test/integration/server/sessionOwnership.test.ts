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
});
