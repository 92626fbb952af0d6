import { expect } from 'chai';
import { RawClient } from '../../helpers/rawClient.ts';
import { testAuth } from '../../../harness/startTestCluster.ts';
import { connectSession, describeEachServerEnv } from './serverTestKit.ts';

describeEachServerEnv(
  'MatsSocketServer cluster of three nodes',
  {
    nodes: 3,
    server: {
      limits: { maxDeliveryAttempts: 2 },
      jobs: { selfHealIntervalMs: 100, selfHealMinAgeMs: 50 },
    },
  },
  (ctx) => {
    const node = (i: number) => ctx().cluster.nodes[i]!;

    it('a message stored on node A for a session held by node B is delivered by B (poke)', async () => {
      const { client, sid } = await connectSession(node(1).url);
      expect(await node(0).server.send(sid, 'cross', 'ClientSide.terminator', { from: 'A' })).to.equal(true);
      const send = await client.nextOfType('SEND');
      expect(send.msg).to.deep.equal({ from: 'A' });
      client.send([{ t: 'ACK', smid: send.smid }]);
      await client.nextOfType('ACK2');
      await client.close(4000, 'done');
    });

    it('replies handled on any node reach the holding node', async () => {
      const { client } = await connectSession(node(1).url);
      const n = 12;
      client.send(
        [...Array(n).keys()].map((i) => ({
          t: 'REQUEST',
          eid: 'Test.single',
          tid: `m${i}`,
          cmid: i,
          msg: { number: i, string: 's' },
        })),
      );
      const cmids = new Set<string>();
      while (cmids.size < n) cmids.add((await client.nextOfType('RESOLVE')).cmid as string);
      await client.close(4000, 'done');
    });

    it("replies come back to the node holding the session: its reply queue (nodeReplyQueues), not another node's", async () => {
      for (const i of [0, 1, 2]) {
        const { client } = await connectSession(node(i).url, 'enableAllDebugOptions');
        const n = 9;
        client.send(
          [...Array(n).keys()].map((c) => ({
            t: 'REQUEST',
            eid: 'Test.single',
            tid: `home${c}`,
            cmid: c,
            rd: 2, // node names: mmrrnn is the node whose reply handler took the reply
            msg: { number: c, string: 'h' },
          })),
        );
        const handledBy = new Set<string>();
        for (let c = 0; c < n; c++) {
          handledBy.add(((await client.nextOfType('RESOLVE')).debug as { mmrrnn: string }).mmrrnn);
        }
        expect([...handledBy]).to.deep.equal([node(i).nodeName]);
        await client.close(4000, 'done');
      }
    });

    it('a client that disconnects with a reply pending gets it exactly once after resuming on another node', async () => {
      const { client, sid } = await connectSession(node(1).url);
      client.send([
        {
          t: 'REQUEST',
          eid: 'Test.slow',
          tid: 'pending',
          cmid: 1,
          msg: { number: 1, string: 'p', sleepTime: 200 },
        },
      ]);
      await client.nextOfType('ACK');
      client.terminate();
      const onC = await RawClient.connect(node(2).url);
      expect((await onC.hello(testAuth('standard'), { sid })).sid).to.equal(sid);
      const resolve = await onC.nextOfType('RESOLVE');
      expect(resolve.msg).to.deep.equal({ number: 1, string: 'p:FromSlow', sleepTime: 200 });
      onC.send([
        { t: 'ACK', smid: resolve.smid },
        { t: 'ACK2', cmid: '1' },
      ]);
      await onC.nextOfType('ACK2');
      onC.terminate();
      const onA = await RawClient.connect(node(0).url);
      await onA.hello(testAuth('standard'), { sid });
      onA.send([{ t: 'PING', x: 'b' }]);
      await onA.nextOfType('PONG');
      expect(onA.frames.flat().filter((e) => e.t === 'RESOLVE')).to.have.length(0);
      await onA.close(4000, 'done');
    });

    it('takeover across nodes: the old connection gets 4003 before a request on the new one is answered', async () => {
      const { client: old, sid } = await connectSession(node(0).url);
      const fresh = await RawClient.connect(node(1).url);
      const welcome = await fresh.hello(testAuth('standard'), { sid });
      expect(welcome.desc).to.equal('reconnected - existing in store');
      fresh.send([
        { t: 'REQUEST', eid: 'Test.single', tid: 'after-takeover', cmid: 1, msg: { number: 1, string: 'x' } },
      ]);
      const closed = await old.closed();
      expect(closed.code).to.equal(4003);
      expect(closed.reason).to.include('same MatsSocketSessionId').and.include('remote');
      await fresh.nextOfType('RESOLVE');
      await fresh.close(4000, 'done');
    });

    it('many sessions taken over at once (a reconnect storm): every old connection gets 4003', async () => {
      // Resumes finishing in the same turn share one CloseWS notice per node (`also`); each must still close.
      const olds = await Promise.all(Array.from({ length: 12 }, () => connectSession(node(0).url)));
      const freshes = await Promise.all(olds.map(() => RawClient.connect(node(1).url)));
      await Promise.all(freshes.map((f, i) => f.hello(testAuth('standard'), { sid: olds[i]!.sid })));
      for (const { client } of olds) expect((await client.closed()).code).to.equal(4003);
      await Promise.all(freshes.map((f) => f.close(4000, 'done')));
    });

    it('closeSession on another node closes the connection with 4000', async () => {
      const { client, sid } = await connectSession(node(2).url);
      await node(0).server.closeSession(sid, 'remote close');
      const closed = await client.closed();
      expect(closed).to.deep.equal({ code: 4000, reason: 'Server Side: remote close' });
    });

    it('a lost poke is healed by the self-heal sweep (BR-3)', async () => {
      const { client, sid } = await connectSession(node(1).url);
      // Written straight into the store: nobody pokes.
      await node(0).store.storeMessageInOutbox({
        sessionId: sid,
        smid: 'LostPoke0001',
        traceId: 'lost',
        type: 'SEND',
        envelope: JSON.stringify({ t: 'SEND', eid: 'ClientSide.terminator', tid: 'lost' }),
        messageText: JSON.stringify({ lost: true }),
      });
      const send = await client.nextOfType('SEND', 5000);
      expect(send).to.include({ smid: 'LostPoke0001', tid: 'lost' });
      await client.close(4000, 'done');
    });

    it('a message never ACKed is dead-lettered after the limit, not redelivered on resume, and delivered after requeue', async () => {
      const deadLettered = new Promise<string[]>((resolve) => {
        const offs = ctx().cluster.nodes.map((n) =>
          n.server.on('deadLetter', (e) => {
            if (e.reason !== 'delivery_limit') return;
            offs.forEach((off) => off());
            resolve(e.smids);
          }),
        );
      });
      const session = await connectSession(node(0).url);
      const sid = session.sid;
      let client = session.client;
      await node(0).server.send(sid, 'dlq', 'ClientSide.terminator', { poison: true });
      const first = await client.nextOfType('SEND');
      // Each write counts once it is marked attempted (a mark for a connection already taken over is skipped).
      const marked = async (): Promise<void> => {
        const deadline = Date.now() + 3000;
        while ((await node(0).store.getMessagesFromOutbox(sid, 10)).length > 0 && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 10));
        }
      };
      // Attempt 1 was the first write; resume for attempt 2, then resume again: the limit (2) is reached.
      for (const i of [1, 2]) {
        await marked();
        client.terminate();
        ({ client } = await connectSession(node(i).url, 'standard', { sid }));
        if (i === 1) expect((await client.nextOfType('SEND')).smid).to.equal(first.smid);
      }
      expect(await deadLettered).to.deep.equal([first.smid]);
      const [entry] = await node(0).server.listDeadLetters({ sessionId: sid });
      expect(entry).to.include({
        smid: first.smid,
        reason: 'delivery_limit',
        deliveryCount: 2,
        userId: 'standard',
      });
      client.terminate();
      ({ client } = await connectSession(node(0).url, 'standard', { sid }));
      client.send([{ t: 'PING', x: 'b' }]);
      await client.nextOfType('PONG');
      expect(client.frames.flat().filter((e) => e.t === 'SEND')).to.have.length(0);
      const requeued = await node(1).server.requeueDeadLetter(entry!.id);
      expect(requeued.ok).to.equal(true);
      const again = await client.nextOfType('SEND');
      expect(again.smid).to.equal(first.smid);
      expect(again.msg).to.deep.equal({ poison: true });
      client.send([{ t: 'ACK', smid: again.smid }]);
      await client.nextOfType('ACK2');
      expect(await node(0).server.listDeadLetters({ sessionId: sid })).to.have.length(0);
      await client.close(4000, 'done');
    });

    // Last in this suite: it stops the reply handlers of nodes B and C.
    it("a reply handled on node A (the only reply handler left, B's reply queue taken over) for a session held by B is delivered by B", async () => {
      // Every reply-handler queue: the shared one and the node reply queues.
      const shared = `MatsSocket.${node(0).server.instanceName}.replyHandler`;
      const ids = [shared, ...Array.from({ length: 8 }, (_, k) => `${shared}.${k}`)];
      for (const i of [1, 2]) for (const id of ids) await node(i).factory.getEndpoint(id)!.remove(500);
      for (const id of ids) expect(node(0).factory.getEndpoint(id), id).to.not.equal(undefined);
      const { client } = await connectSession(node(1).url);
      client.send(
        [0, 1, 2].map((i) => ({
          t: 'REQUEST',
          eid: 'Test.single',
          tid: `onA${i}`,
          cmid: i,
          msg: { number: i, string: 'a' },
        })),
      );
      const cmids = new Set<string>();
      while (cmids.size < 3) cmids.add((await client.nextOfType('RESOLVE')).cmid as string);
      await client.close(4000, 'done');
    });
  },
);
