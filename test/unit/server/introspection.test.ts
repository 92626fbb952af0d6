import { expect } from 'chai';
import type { IncomingMessage } from 'node:http';
import { jwtAuthentication } from '../../../src/server/auth/jwt/jwtAuthentication.ts';
import {
  authenticated,
  stillValid,
  type ConnectionInfo,
} from '../../../src/server/auth/AuthenticationPlugin.ts';
import { AnswerTimings } from '../../../src/server/connection/AnswerTimings.ts';
import { ConnectionAuthState } from '../../../src/server/connection/ConnectionAuthState.ts';
import { EnvelopeRecorder } from '../../../src/server/connection/EnvelopeRecorder.ts';
import { markInitiated } from '../../../src/server/connection/initiationOf.ts';
import { firstForwardedFor } from '../../../src/server/connection/WebSocketGateway.ts';
import { endpointInfos } from '../../../src/server/introspection/EndpointInfo.ts';
import type { MessageEvent } from '../../../src/server/ServerEvents.ts';
import { epochSec, FakeAuthContext, signHs256, TEST_SECRET } from '../../helpers/jwtKit.ts';

const at = (ts: number, perf = ts) => ({ ts, perf });

describe('AnswerTimings', () => {
  it('matches each answer to the receipt it answers, once', () => {
    const t = new AnswerTimings(16);
    t.received({ t: 'HELLO' }, at(1));
    t.received({ t: 'PING', x: '7' }, at(2));
    t.received({ t: 'SEND', cmid: 'a' }, at(3));
    t.received({ t: 'SUB', eid: 'topic' }, at(4));
    t.received({ t: 'ACK', ids: ['s1', 's2'] }, at(5));
    expect(t.answered({ t: 'WELCOME' })).to.deep.include(at(1));
    expect(t.answered({ t: 'WELCOME' })).to.equal(undefined);
    expect(t.answered({ t: 'PONG', x: '7' })).to.deep.include(at(2));
    expect(t.answered({ t: 'ACK', cmid: 'a' })).to.deep.include(at(3));
    expect(t.answered({ t: 'SUB_NO_AUTH', eid: 'topic' })).to.deep.include(at(4));
    expect(t.answered({ t: 'ACK2', smid: 's2' })).to.deep.include(at(5));
    expect(t.answered({ t: 'ACK2', smid: 's1' })).to.deep.include(at(5));
    expect(t.size).to.equal(0);
  });

  it('keeps a REQUEST past its ACK for the RESOLVE; a batch gets its earliest receipt', () => {
    const t = new AnswerTimings(16);
    t.received({ t: 'REQUEST', cmid: 'r' }, at(10));
    t.received({ t: 'SEND', cmid: 's' }, at(5));
    expect(t.answered({ t: 'ACK', ids: ['r', 's'] })).to.deep.include(at(5));
    expect(t.answered({ t: 'RESOLVE', cmid: 'r' })).to.deep.include(at(10));
    expect(t.size).to.equal(0);
  });

  it('forgets the oldest past its bound and ignores long client ids', () => {
    const t = new AnswerTimings(2);
    for (const cmid of ['1', '2', '3']) t.received({ t: 'SEND', cmid }, at(Number(cmid)));
    t.received({ t: 'SEND', cmid: 'x'.repeat(65) }, at(9));
    expect(t.size).to.equal(2);
    expect(t.answered({ t: 'ACK', cmid: '1' })).to.equal(undefined);
    expect(t.answered({ t: 'ACK', cmid: '3' })).to.deep.include(at(3));
  });
});

describe('EnvelopeRecorder: message event metadata', () => {
  const events: MessageEvent[] = [];
  const conn = {
    sessionId: 's1',
    connectionId: 'c1',
    core: {
      now: () => 1000,
      options: { nodeName: 'node-a' },
      events: { hasListeners: () => true, emit: (_e: 'message', m: MessageEvent) => events.push(m) },
    },
  };
  beforeEach(() => (events.length = 0));

  it('reports a SEND once resolved, with the resolution, in the kept entry too', () => {
    const recorder = new EnvelopeRecorder({ maxEntries: 10, maxBytes: 1 << 20, maxFieldChars: 100 });
    recorder.record(
      'in',
      [
        { t: 'SEND', cmid: '1' },
        { t: 'PING', x: '0' },
      ],
      conn,
    );
    expect(events.map((e) => e.t)).to.deep.equal(['PING']);
    const info = { resolution: 'FORWARD' as const, forwardedTo: 'Backend.ep', resolutionMs: 1.5 };
    recorder.resolved('1', info, conn);
    recorder.resolved('1', undefined, conn);
    expect(events.map((e) => e.t)).to.deep.equal(['PING', 'SEND']);
    expect(events[1]).to.include({ nodeName: 'node-a', ...info });
    expect(recorder.entries()[0]).to.include(info);
  });

  it('reports the unresolved ones when the connection ends', () => {
    const recorder = new EnvelopeRecorder({ maxEntries: 10, maxBytes: 1 << 20, maxFieldChars: 100 });
    recorder.record('in', [{ t: 'REQUEST', cmid: '2' }], conn);
    recorder.flush(conn);
    expect(events).to.have.length(1);
    expect(events[0]!.resolution).to.equal(undefined);
  });

  it('puts the creation stamps on a server-initiated SEND', () => {
    const recorder = new EnvelopeRecorder({ maxEntries: 10, maxBytes: 1 << 20, maxFieldChars: 100 });
    const envelope = { t: 'SEND', smid: 'm1' };
    markInitiated(envelope, { smcts: 900, smcnn: 'node-b' });
    recorder.record('out', [envelope, { t: 'SEND', smid: 'm2' }], conn);
    expect(events[0]).to.include({ initiatedTimestamp: 900, initiatedNodeName: 'node-b' });
    expect(events[1]!.initiatedTimestamp).to.equal(undefined);
  });
});

describe('introspection helpers', () => {
  it('endpointInfos: forward/direct/terminator, reply adapter, sorted by id', () => {
    const incoming = () => undefined;
    const infos = endpointInfos([
      { endpointId: 'b', kind: 'endpoint', incoming, replyAdapter: () => undefined, immediateReplies: false },
      { endpointId: 'a', kind: 'terminator', incoming, replyAdapter: undefined, immediateReplies: false },
      { endpointId: 'c', kind: 'direct', incoming, replyAdapter: undefined, immediateReplies: true },
    ]);
    expect(infos).to.deep.equal([
      { endpointId: 'a', kind: 'terminator', hasReplyAdapter: false },
      { endpointId: 'b', kind: 'forward', hasReplyAdapter: true },
      { endpointId: 'c', kind: 'direct', hasReplyAdapter: false },
    ]);
  });

  it('firstForwardedFor: the first hop, trimmed and bounded; none without the header', () => {
    const req = (value: string | undefined) =>
      ({ headers: value === undefined ? {} : { 'x-forwarded-for': value } }) as IncomingMessage;
    expect(firstForwardedFor(req(' 203.0.113.7 , 10.0.0.1'))).to.equal('203.0.113.7');
    expect(firstForwardedFor(req(undefined))).to.equal(undefined);
    expect(firstForwardedFor(req(''))).to.equal(undefined);
    expect(firstForwardedFor(req('x'.repeat(1000)))).to.have.length(256);
  });

  it('ConnectionAuthState: addresses from the connection, overridable by the plugin; expiry kept by stillValid', () => {
    const conn = {
      info: { remoteAddress: '10.0.0.9', originatingAddress: '203.0.113.1' },
      core: { now: () => 5 },
    };
    const auth = new ConnectionAuthState(conn as never);
    expect(auth).to.include({ remoteAddress: '10.0.0.9', originatingAddress: '203.0.113.1' });
    auth.setOriginatingRemoteAddress('198.51.100.4');
    auth.setRemoteAddress('r'.repeat(300));
    expect(auth.originatingAddress).to.equal('198.51.100.4');
    expect(auth.remoteAddress).to.have.length(256);
    auth.accept(authenticated({}, 'u', 0, 60_000), 'v1');
    auth.accept(stillValid(), 'v1');
    expect(auth).to.include({ authorizationExpiresAt: 60_000, lastAuthenticatedTimestamp: 5 });
  });

  it("the JWT plugin reports when the token's authorization expires", async () => {
    const plugin = jwtAuthentication({ algorithms: ['HS256'], secret: TEST_SECRET, clockToleranceSec: 2 })(
      {} as ConnectionInfo,
    );
    const exp = Math.floor(epochSec(60_000));
    const result = await plugin.initialAuthentication(
      new FakeAuthContext(),
      await signHs256({ sub: 'alice', exp }),
    );
    expect(result).to.include({ kind: 'authenticated', authorizationExpiresAt: (exp + 2) * 1000 });
  });
});
