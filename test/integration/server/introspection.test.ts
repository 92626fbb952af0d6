import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import type { MatsSocketServer } from '../../../src/server/MatsSocketServer.ts';
import type { MessageEvent } from '../../../src/server/ServerEvents.ts';
import { eventually } from '../../helpers/clientKit.ts';
import { RawClient } from '../../helpers/rawClient.ts';
import { testAuth } from '../../../harness/startTestCluster.ts';
import { describeEachServerEnv } from './serverTestKit.ts';

/** The server's message events, with waiting for one that matches. */
class EventLog {
  readonly events: MessageEvent[] = [];
  readonly #waiters: (() => void)[] = [];
  readonly off: () => void;

  constructor(server: MatsSocketServer, sessionOrConnection: () => string | undefined) {
    this.off = server.on('message', (event) => {
      const id = sessionOrConnection();
      if (id !== undefined && event.sessionId !== id && event.connectionId !== id) return;
      this.events.push(event);
      for (const wake of this.#waiters.splice(0)) wake();
    });
  }

  find(predicate: (e: MessageEvent) => boolean): Promise<MessageEvent> {
    return eventually(() => this.events.find(predicate), {
      what: 'a message event',
      wake: (w) => this.#waiters.push(w),
    });
  }
}

describeEachServerEnv('MatsSocketServer introspection', { nodes: 1, envs: ['in-memory + SQLite'] }, (ctx) => {
  const node = () => ctx().cluster.nodes[0]!;

  it('getActiveSession(s): addresses, timestamps, sorted topic ids, last envelopes', async () => {
    const before = Date.now();
    const client = await RawClient.connect(node().url, {
      headers: { 'x-forwarded-for': '203.0.113.7, 10.0.0.1' },
    });
    const welcome = await client.hello(testAuth('introspected'), {
      extra: [
        { t: 'SUB', eid: 'topic.b' },
        { t: 'SUB', eid: 'topic.a' },
      ],
    });
    const sid = welcome.sid as string;
    await client.nextOfType('SUB_OK');
    await client.nextOfType('SUB_OK');
    const established = node().server.getActiveSession(sid)!;
    expect(established.lastClientPingTimestamp).to.equal(undefined);
    expect(established.lastActivityTimestamp).to.equal(established.establishedTimestamp);

    client.send([{ t: 'PING', x: '0' }]);
    await client.nextOfType('PONG');
    client.send([{ t: 'SEND', eid: 'Test.ignoreInIncomingHandler', tid: 'activity', cmid: 1 }]);
    await client.nextOfType('ACK');

    const session = node().server.getActiveSession(sid)!;
    expect(session).to.include({
      sessionId: sid,
      nodeName: node().nodeName,
      userId: 'introspected',
      appName: 'TestApp',
      originatingAddress: '203.0.113.7',
      authorizationExpiresAt: undefined,
    });
    expect(session.remoteAddress).to.match(/127\.0\.0\.1$/);
    expect(session.topics).to.deep.equal(['topic.a', 'topic.b']);
    expect(session.establishedTimestamp).to.be.within(before, Date.now());
    expect(session.lastAuthenticatedTimestamp).to.be.at.least(session.establishedTimestamp - 1000);
    expect(session.lastClientPingTimestamp).to.be.at.least(session.establishedTimestamp);
    expect(session.lastActivityTimestamp).to.be.at.least(session.lastClientPingTimestamp!);
    expect(session.lastEnvelopes.map((e) => e.t)).to.include.members(['HELLO', 'WELCOME', 'PING', 'PONG']);
    const all = node().server.getActiveSessions();
    expect(all.map((s) => s.sessionId)).to.include(sid);
    expect(all.map((s) => s.sessionId)).to.deep.equal(all.map((s) => s.sessionId).sort());

    await client.close(4000, 'done');
    await eventually(() => node().server.getActiveSession(sid) === undefined, { what: 'the session gone' });
  });

  it('getEndpoints lists every endpoint with its kind, sorted; implementation is this package', () => {
    const endpoints = node().server.getEndpoints();
    const ids = endpoints.map((e) => e.endpointId);
    expect(ids).to.deep.equal([...ids].sort());
    expect(endpoints).to.deep.include.members([
      { endpointId: 'Test.single', kind: 'forward', hasReplyAdapter: true },
      { endpointId: 'Test.slow', kind: 'forward', hasReplyAdapter: false },
      { endpointId: 'Test.resolveInIncomingHandler', kind: 'direct', hasReplyAdapter: false },
      { endpointId: 'Test.replyReceiver', kind: 'terminator', hasReplyAdapter: false },
      { endpointId: 'MatsSocket.matsSocketPing', kind: 'direct', hasReplyAdapter: false },
    ]);
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
      name: string;
      version: string;
    };
    expect(node().server.implementation).to.deep.equal({ name: pkg.name, version: pkg.version });
  });

  it('message events carry node, answer timings, the incoming resolution and the initiation', async () => {
    const server = node().server;
    let sid: string | undefined;
    const log = new EventLog(server, () => sid);
    try {
      const client = await RawClient.connect(node().url);
      sid = (await client.hello(testAuth('timed'))).sid as string;
      const hello = await log.find((e) => e.t === 'HELLO');
      const welcome = await log.find((e) => e.t === 'WELCOME');
      expect(welcome).to.include({ direction: 'out', nodeName: node().nodeName });
      expect(welcome.incomingTimestamp).to.equal(hello.timestamp);
      expect(welcome.roundTripMs).to.be.at.least(0);

      client.send([
        { t: 'REQUEST', eid: 'Test.resolveInIncomingHandler', tid: 'r', cmid: 1, msg: { number: 1 } },
        { t: 'SEND', eid: 'Test.denyInIncomingHandler', tid: 'd', cmid: 2 },
        { t: 'SEND', eid: 'Test.throwsInIncomingHandler', tid: 'x', cmid: 3 },
        { t: 'REQUEST', eid: 'Test.single', tid: 'f', cmid: 4, msg: { number: 4, string: 'four' } },
        { t: 'PING', x: 'p1' },
      ]);
      const request = await log.find((e) => e.direction === 'in' && e.cmid === '1');
      expect(request).to.include({ t: 'REQUEST', resolution: 'RESOLVE' });
      expect(request.resolutionMs).to.be.at.least(0);
      const resolve = await log.find((e) => e.t === 'RESOLVE' && e.cmid === '1');
      expect(resolve.incomingTimestamp).to.equal(request.timestamp);
      expect(resolve.roundTripMs).to.be.at.least(0);
      expect(log.events.indexOf(request)).to.be.below(log.events.indexOf(resolve));

      expect(await log.find((e) => e.direction === 'in' && e.cmid === '2')).to.include({
        resolution: 'DENY',
      });
      const nack = await log.find((e) => e.t === 'NACK' && (e.cmid === '2' || !!e.ids?.includes('2')));
      expect(nack.incomingTimestamp).to.be.a('number');
      expect(await log.find((e) => e.direction === 'in' && e.cmid === '3')).to.include({
        resolution: 'EXCEPTION',
      });
      const forwarded = await log.find((e) => e.direction === 'in' && e.cmid === '4');
      expect(forwarded).to.include({ resolution: 'FORWARD', forwardedTo: 'Test.single' });
      const reply = await log.find((e) => e.t === 'RESOLVE' && e.cmid === '4');
      expect(reply.incomingTimestamp).to.equal(forwarded.timestamp);
      const ping = await log.find((e) => e.t === 'PING');
      expect((await log.find((e) => e.t === 'PONG')).incomingTimestamp).to.equal(ping.timestamp);

      await server.send(sid, 'push', 'ClientSide.terminator', { n: 1 });
      const push = await log.find((e) => e.direction === 'out' && e.t === 'SEND');
      expect(push.initiatedNodeName).to.equal(node().nodeName);
      expect(push.initiatedTimestamp).to.be.at.most(push.timestamp);
      client.send([{ t: 'ACK', smid: push.smid! }]);
      const ack2 = await log.find((e) => e.t === 'ACK2');
      expect(ack2.incomingTimestamp).to.equal(
        (await log.find((e) => e.direction === 'in' && e.t === 'ACK')).timestamp,
      );

      const kept = server
        .getActiveSession(sid)!
        .lastEnvelopes.find((e) => e.direction === 'in' && e.cmid === '4');
      expect(kept).to.include({ resolution: 'FORWARD', forwardedTo: 'Test.single' });
      await client.close(4000, 'done');
    } finally {
      log.off();
    }
  });
});
