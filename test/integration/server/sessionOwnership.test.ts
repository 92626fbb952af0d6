import { expect } from 'chai';
import { RawClient } from '../../helpers/rawClient.ts';
import { testAuth, testAuthPlugin } from '../../../harness/startTestCluster.ts';
import { connectSession, describeEachServerEnv } from './serverTestKit.ts';

/** A HELLO naming a session it does not own (docs/protocol.md 8.3) must change nothing for that session. */
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

/** Server-side close (8.16) of a session whose resume is in the store right now, on the same node. */
describe('MatsSocketServer session ownership: close during a resume', () => {
  /** Resolves when the test plugin authenticates `userId` (the HELLO then goes straight to the resume). */
  let authenticated: ((userId: string) => void) | undefined;
  describeEachServerEnv(
    'closeSession() while a resume is pending',
    {
      nodes: 1,
      // The resume waits this long in the group-commit window: the close lands while it is pending.
      server: { timings: { groupCommitWindowMs: 400 } },
      auth: () => {
        const plugin = testAuthPlugin();
        return {
          ...plugin,
          initialAuthentication: (ctx, value) => {
            const result = plugin.initialAuthentication(ctx, value);
            authenticated?.(value.split(':')[1]!);
            return result;
          },
        };
      },
    },
    (ctx) => {
      it('closes the resuming connection with 4000 and deletes the session', async () => {
        const node = ctx().cluster.nodes[0]!;
        const { client: first, sid } = await connectSession(node.url, 'carol');
        const deregistered = new Promise<void>((resolve) => {
          const off = node.server.on('sessionRemoved', (e) => {
            if (e.sessionId !== sid) return;
            off();
            resolve();
          });
        });
        first.terminate();
        await deregistered;
        const resuming = await RawClient.connect(node.url);
        const authed = new Promise<void>((resolve) => {
          authenticated = (userId) => {
            if (userId === 'carol') resolve();
          };
        });
        resuming.send([{ t: 'HELLO', clv: 'c', an: 'a', av: '1', auth: testAuth('carol'), sid }]);
        await authed;
        await new Promise((r) => setImmediate(r));
        await node.server.closeSession(sid, 'closed while resuming');
        const closed = await resuming.closed();
        expect(closed.code).to.equal(4000);
        expect(await node.store.isSessionExists(sid)).to.be.false;
      });
    },
  );
});
