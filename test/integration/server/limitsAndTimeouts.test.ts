import { expect } from 'chai';
import { InMemoryMetrics } from '../../../src/metrics/InMemoryMetrics.ts';
import { RawClient } from '../../helpers/rawClient.ts';
import { testAuth } from '../../../harness/startTestCluster.ts';
import { connectSession, describeEachServerEnv } from './serverTestKit.ts';

/** Every limit that trips is counted, so operators can see an attack (docs/security.md). */
const limitMetrics = new InMemoryMetrics();
const tripped = (limit: string): number => limitMetrics.total('matssocket_inbound_limit_total', { limit });

describeEachServerEnv(
  'MatsSocketServer limits and timeouts',
  {
    nodes: 1,
    envs: ['in-memory + SQLite'],
    server: {
      metrics: limitMetrics,
      limits: {
        maxSessionsPerUser: 3,
        maxTopicsPerConnection: 3,
        reauthHoldMaxEnvelopes: 2,
        reauthMaxWithoutProgress: 5,
        reauthHoldMaxSubs: 3,
      },
      timings: { helloTimeoutMs: 150, idleTimeoutMs: 400, wsPingIntervalMs: 60 },
    },
  },
  (ctx) => {
    const node = () => ctx().cluster.nodes[0]!;

    it('closes 1001 "no HELLO in time"', async () => {
      const client = await RawClient.connect(node().url);
      const closed = await client.closed();
      expect(closed).to.deep.equal({ code: 1001, reason: 'no HELLO in time' });
      expect(tripped('helloTimeoutMs')).to.be.at.least(1);
    });

    it('BR-6: a client that does not answer WebSocket pings is terminated and its session deregistered', async () => {
      const client = await RawClient.connect(node().url, { autoPong: false });
      const { sid } = { sid: (await client.hello(testAuth('standard'))).sid as string };
      const removed = new Promise((resolve) => {
        const off = node().server.on('sessionRemoved', (e) => {
          if (e.sessionId === sid) {
            off();
            resolve(e.type);
          }
        });
      });
      const closed = await client.closed();
      expect(closed.code).to.equal(1006);
      expect(await removed).to.equal('DEREGISTER');
      expect(tripped('wsPingIntervalMs')).to.be.at.least(1);
      const again = await RawClient.connect(node().url);
      expect((await again.hello(testAuth('standard'), { sid })).sid).to.equal(sid);
      await again.close(4000, 'done');
    });

    it('closes 1008 when the user has too many sessions (resume excluded)', async () => {
      const sessions = [];
      for (let i = 0; i < 3; i++) sessions.push(await connectSession(node().url, 'many'));
      const fourth = await RawClient.connect(node().url);
      fourth.send([{ t: 'HELLO', clv: 'c', an: 'a', av: '1', auth: testAuth('many') }]);
      const closed = await fourth.closed();
      expect(closed).to.deep.equal({ code: 1008, reason: 'Too many sessions for resolved userId' });
      expect(tripped('maxSessionsPerUser')).to.equal(1);
      // Resuming one of the three is allowed.
      const { sid } = sessions[0]!;
      sessions[0]!.client.terminate();
      const again = await RawClient.connect(node().url);
      expect((await again.hello(testAuth('many'), { sid })).sid).to.equal(sid);
      await again.close(4000, 'done');
      for (const s of sessions.slice(1)) await s.client.close(4000, 'done');
    });

    it('closes 4004 on the SUB that exceeds the topics per connection', async () => {
      const { client } = await connectSession(node().url);
      client.send([1, 2, 3, 4].map((i) => ({ t: 'SUB', eid: `limit.${i}` })));
      const closed = await client.closed();
      expect(closed.code).to.equal(4004);
      expect(tripped('maxTopicsPerConnection')).to.equal(1);
    });

    it('REAUTH hold: excess information-bearing envelopes get RETRY', async () => {
      const { client } = await connectSession(node().url);
      client.send(
        [1, 2, 3].map((i) => ({
          t: 'SEND',
          eid: 'Test.ignoreInIncomingHandler',
          tid: 'h',
          cmid: i,
          auth: testAuth('fail_reevaluate'),
        })),
      );
      await client.nextOfType('REAUTH');
      expect(await client.nextOfType('RETRY')).to.include({ cmid: '3' });
      expect(tripped('reauthHoldMaxEnvelopes')).to.be.at.least(1);
      client.send([{ t: 'AUTH', auth: testAuth('standard') }]);
      await client.next((e) => e.t === 'ACK' && (e.ids as string[] | undefined)?.join() === '1,2');
      await client.close(4000, 'done');
    });

    it('REAUTH hold: too many messages without progress close 1008', async () => {
      const { client } = await connectSession(node().url);
      client.send([{ t: 'AUTH', auth: testAuth('fail_reevaluate') }]);
      for (let i = 0; i < 6; i++)
        client.send([{ t: 'SEND', eid: 'Test.ignoreInIncomingHandler', tid: 'h', cmid: i }]);
      const closed = await client.closed();
      expect(closed.code).to.equal(1008);
      expect(tripped('reauthMaxWithoutProgress')).to.equal(1);
    });

    it('REAUTH hold: too many held SUBs close 1008', async () => {
      const { client } = await connectSession(node().url);
      client.send([
        { t: 'AUTH', auth: testAuth('fail_reevaluate') },
        ...[1, 2, 3, 4].map((i) => ({ t: 'SUB', eid: `h.${i}` })),
      ]);
      const closed = await client.closed();
      expect(closed.code).to.equal(1008);
      expect(tripped('reauthHoldMaxSubs')).to.equal(1);
    });
  },
);

describeEachServerEnv(
  'MatsSocketServer graceful stop (8.17)',
  { nodes: 2, envs: ['in-memory + SQLite'] },
  (ctx) => {
    it('closes live connections with 1012 (deregistered, resumable on another node) and new ones at once', async () => {
      const [a, b] = ctx().cluster.nodes;
      const { client, sid } = await connectSession(a!.url);
      // In-flight handling (300 ms in the incoming handler) keeps the node in its grace period for a while.
      client.send([
        {
          t: 'REQUEST',
          eid: 'Test.slow',
          tid: 's',
          cmid: 1,
          msg: { sleepIncoming: 300, number: 1, string: 's' },
        },
      ]);
      await ctx().recorder.waitFor((s) => s.sessionId === sid && s.traceId === 's');
      const stopping = a!.server.stop(2000);
      const late = await RawClient.connect(a!.url);
      expect(await late.closed()).to.deep.include({ code: 1012 });
      // The in-flight REQUEST was accepted within the grace period, then the connection closed with 1012.
      await client.next((e) => e.t === 'ACK' && e.cmid === '1');
      const closed = await client.closed();
      expect(closed).to.deep.equal({
        code: 1012,
        reason: 'From Server: Server instance is going down, please reconnect.',
      });
      await stopping;
      // A stopped node refuses server-initiated messages with a rejected promise (never a throw at the call).
      for (const call of [
        () => a!.server.send(sid, 't', 'ClientSide.terminator', {}),
        () => a!.server.request(sid, 't', 'ClientSide.endpoint', {}, 'Test.replyReceiver'),
        () => a!.server.publish('t', 'Test.topic', {}),
      ]) {
        let returned: Promise<unknown> | undefined;
        expect(() => (returned = call())).to.not.throw();
        const error = await returned!.then(
          () => undefined,
          (err: unknown) => err,
        );
        expect(error).to.have.property('code', 'SERVER_STOPPED');
      }
      const again = await RawClient.connect(b!.url);
      expect((await again.hello(testAuth('standard'), { sid })).sid).to.equal(sid);
      await again.close(4000, 'done');
    });
  },
);

describeEachServerEnv(
  'MatsSocketServer idle timeout',
  {
    nodes: 1,
    envs: ['in-memory + SQLite'],
    server: { timings: { idleTimeoutMs: 200, wsPingIntervalMs: 0 } },
  },
  (ctx) => {
    it('a silent client is closed 1001 at the idle timeout (WebSocket pings off), and can resume', async () => {
      const { client, sid } = await connectSession(ctx().cluster.nodes[0]!.url);
      const closed = await client.closed();
      expect(closed.code).to.equal(1001);
      expect(closed.reason).to.not.equal('');
      const again = await RawClient.connect(ctx().cluster.nodes[0]!.url);
      expect((await again.hello(testAuth('standard'), { sid })).sid).to.equal(sid);
      await again.close(4000, 'done');
    });
  },
);
