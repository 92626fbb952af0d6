import { expect } from 'chai';
import { Registry } from 'prom-client';
import { promMetrics } from '../../../src/metrics/promMetrics.ts';
import { connectSession, describeEachServerEnv } from './serverTestKit.ts';

const registry = new Registry();

describeEachServerEnv(
  'MatsSocketServer dead letters (BR-2) and metrics',
  {
    nodes: 1,
    server: { deadLetterOnNack: true, limits: { maxFrameBytes: 50_000 }, metrics: promMetrics({ registry }) },
  },
  (ctx) => {
    const node = () => ctx().cluster.nodes[0]!;

    it('a message over the frame limit is dead-lettered as undeliverable at once', async () => {
      const { client, sid } = await connectSession(node().url);
      await node().server.send(sid, 'big', 'ClientSide.terminator', 'x'.repeat(60_000));
      await node().server.send(sid, 'small', 'ClientSide.terminator', 'ok');
      const send = await client.nextOfType('SEND');
      expect(send.tid).to.equal('small');
      const [entry] = await node().server.listDeadLetters({ sessionId: sid });
      expect(entry).to.include({ reason: 'undeliverable', traceId: 'big', deliveryCount: 0 });
      const full = await node().server.getDeadLetter(entry!.id);
      expect(JSON.parse(full!.messageText!)).to.have.length(60_000);
      await client.close(4000, 'done');
    });

    it('with deadLetterOnNack a NACKed message is kept in the DLQ (client_nack); requeue fails for a gone session', async () => {
      const { client, sid } = await connectSession(node().url);
      await node().server.send(sid, 'nacked', 'ClientSide.terminator', { n: 1 });
      const send = await client.nextOfType('SEND');
      client.send([
        { t: 'NACK', smid: send.smid, desc: 'The Client Terminator [ClientSide.terminator] does not exist!' },
      ]);
      await client.nextOfType('ACK2');
      const [entry] = await node().server.listDeadLetters({ sessionId: sid });
      expect(entry).to.include({ reason: 'client_nack', smid: send.smid });
      expect(entry!.description).to.include('does not exist');
      // The NACK proves one delivery, even when it overtakes the batched attempt mark of that write.
      expect(entry!.deliveryCount).to.equal(1);
      expect(entry!.lastAttemptTs).to.be.a('number').within(entry!.originalStoredTs, entry!.deadLetteredTs);
      // The client's close can complete before the server has terminated the session: wait for the server.
      const removed = new Promise<void>((resolve) => {
        const off = node().server.on('sessionRemoved', (e) => {
          if (e.sessionId === sid && e.type === 'CLOSE') {
            off();
            resolve();
          }
        });
      });
      await client.close(4000, 'done');
      await removed;
      expect(await node().server.requeueDeadLetter(entry!.id)).to.deep.equal({
        ok: false,
        reason: 'SESSION_GONE',
      });
      expect(await node().server.purgeDeadLetters({ ids: [entry!.id] })).to.equal(1);
    });

    it('counts messages, sessions, deliveries and dead letters in prom-client', async () => {
      const { client } = await connectSession(node().url);
      client.send([{ t: 'REQUEST', eid: 'Test.single', tid: 'm', cmid: 1, msg: { number: 1, string: 'm' } }]);
      await client.nextOfType('RESOLVE');
      await client.close(4000, 'done');
      const text = await registry.metrics();
      const nodeLabel = `node="${node().nodeName}"`;
      const value = (name: string, labels: string): number => {
        const line = text
          .split('\n')
          .find((l) => l.startsWith(`${name}{`) && l.includes(labels) && l.includes(nodeLabel));
        return line ? Number(line.split(' ').at(-1)) : 0;
      };
      expect(value('matssocket_messages_received_total', 'type="REQUEST"')).to.be.at.least(1);
      expect(value('matssocket_messages_sent_total', 'type="RESOLVE"')).to.be.at.least(1);
      expect(value('matssocket_sessions_established_total', nodeLabel)).to.be.at.least(3);
      expect(value('matssocket_outbox_deliveries_total', nodeLabel)).to.be.at.least(2);
      // The REQUEST went through Mats: its RESOLVE was written by the forwarder.
      expect(value('matssocket_request_round_trip_seconds_count', nodeLabel)).to.be.at.least(1);
      // Its reply came back to this node (its reply queue), which holds the session.
      expect(value('matssocket_replies_total', 'session="held_here"')).to.be.at.least(1);
      expect(value('matssocket_replies_total', 'session="elsewhere"')).to.equal(0);
      expect(value('matssocket_dead_letters_total', 'reason="undeliverable"')).to.equal(1);
      expect(value('matssocket_dead_letters_total', 'reason="client_nack"')).to.equal(1);
      // The live-sessions gauge is exported (its value depends on the other tests' sessions on this node).
      expect(text).to.match(new RegExp(`^matssocket_sessions_live\\{${nodeLabel}\\} \\d+$`, 'm'));
    });
  },
);
