import { expect } from 'chai';
import { ConfigError } from '../../../src/errors.ts';
import type { MatsFactory } from '../../../src/mats/MatsFactory.ts';
import { EnvelopeRecorder } from '../../../src/server/connection/EnvelopeRecorder.ts';
import { SendBufferGuard } from '../../../src/server/connection/SendBufferGuard.ts';
import { UnauthenticatedConnections } from '../../../src/server/connection/UnauthenticatedConnections.ts';
import {
  resolveServerOptions,
  type MatsSocketServerOptions,
} from '../../../src/server/MatsSocketServerOptions.ts';
import type { MessageEvent } from '../../../src/server/ServerEvents.ts';
import type { ClusterStoreAndForward } from '../../../src/store/ClusterStoreAndForward.ts';

const base = (): MatsSocketServerOptions => ({
  nodeName: 'node1',
  matsFactory: {} as MatsFactory,
  store: { options: { nodeName: 'node1' } } as ClusterStoreAndForward,
  authenticationPlugin: () => ({
    initialAuthentication: (ctx) => ctx.invalidAuthentication('no'),
    reevaluateAuthentication: (ctx) => ctx.invalidAuthentication('no'),
  }),
});

describe('UnauthenticatedConnections', () => {
  it('refuses past the per-IP and the total limit; a release (once) frees the slot', () => {
    const pool = new UnauthenticatedConnections({ total: 3, perIp: 2 });
    const a1 = pool.admit('a');
    expect(a1).to.be.a('function');
    expect(pool.admit('a')).to.be.a('function');
    expect(pool.admit('a')).to.equal('unauthenticated_per_ip');
    expect(pool.admit('b')).to.be.a('function');
    expect(pool.admit('c')).to.equal('unauthenticated_total');
    (a1 as () => void)();
    (a1 as () => void)();
    expect(pool.size).to.equal(2);
    expect(pool.admit('c')).to.be.a('function');
    expect(pool.admit('a')).to.equal('unauthenticated_total');
  });
});

describe('EnvelopeRecorder', () => {
  const events: MessageEvent[] = [];
  const conn = (listening: boolean) => ({
    sessionId: 's1',
    connectionId: 'c1',
    core: {
      now: () => 1,
      options: { nodeName: 'n1' },
      events: { hasListeners: () => listening, emit: (_e: 'message', m: MessageEvent) => events.push(m) },
    },
  });

  it('cuts long fields and drops the oldest entries to stay within maxBytes', () => {
    const recorder = new EnvelopeRecorder({ maxEntries: 200, maxBytes: 16 * 1024, maxFieldChars: 100 });
    for (let i = 0; i < 60; i++) {
      recorder.record(
        'in',
        [{ t: 'SEND', cmid: `c${i}`, tid: `${i}:${'t'.repeat(4 * 1024 * 1024)}` }],
        conn(false),
      );
    }
    expect(recorder.bytes).to.be.at.most(16 * 1024);
    const entries = recorder.entries();
    expect(entries.length).to.be.within(2, 59);
    expect(entries.at(-1)!.tid).to.equal(`59:${'t'.repeat(97)}…`);
    expect(entries.at(-1)!.cmid).to.equal('c59');
  });

  it('keeps ids within one field budget and counts them', () => {
    const recorder = new EnvelopeRecorder({ maxEntries: 10, maxBytes: 1 << 20, maxFieldChars: 10 });
    recorder.record('out', [{ t: 'ACK', ids: ['aaaa', 'bbbb', 'cccc'] }], conn(false));
    expect(recorder.entries()[0]!.ids).to.deep.equal(['aaaa', 'bbbb']);
  });

  it('still caps by count, and gives message listeners the fields uncut', () => {
    events.length = 0;
    const recorder = new EnvelopeRecorder({ maxEntries: 2, maxBytes: 1 << 20, maxFieldChars: 3 });
    for (const cmid of ['one', 'two', 'three']) {
      recorder.record('in', [{ t: 'SEND', cmid }], conn(true));
      recorder.resolved(cmid, undefined, conn(true));
    }
    expect(recorder.entries().map((e) => e.cmid)).to.deep.equal(['two', 'thr…']);
    expect(events.map((e) => e.cmid)).to.deep.equal(['one', 'two', 'three']);
  });

  it('keeps the last maxEntries, in order, over many more envelopes', () => {
    const recorder = new EnvelopeRecorder({ maxEntries: 200, maxBytes: 1 << 20, maxFieldChars: 100 });
    for (let i = 0; i < 1000; i++) recorder.record('out', [{ t: 'ACK2', smid: `s${i}` }], conn(false));
    const smids = recorder.entries().map((e) => e.smid);
    expect(smids).to.deep.equal(Array.from({ length: 200 }, (_, i) => `s${800 + i}`));
    const one = new EnvelopeRecorder({ maxEntries: 200, maxBytes: 1 << 20, maxFieldChars: 100 });
    one.record('out', [{ t: 'ACK2', smid: 's999' }], conn(false));
    expect(recorder.bytes).to.be.within(200 * one.bytes - 800, 200 * one.bytes);
  });
});

describe('SendBufferGuard', () => {
  it('takes any frame into an empty buffer, and trips when a frame would pass maxBytes', () => {
    const socket = { bufferedAmount: 0 };
    const trips: string[] = [];
    const guard = new SendBufferGuard(socket, { maxBytes: 100, drainTimeoutMs: 10_000 }, (l) =>
      trips.push(l),
    );
    expect(guard.admit(1000)).to.equal(true);
    socket.bufferedAmount = 60;
    expect(guard.admit(40)).to.equal(true);
    expect(guard.admit(41)).to.equal(false);
    expect(trips).to.deep.equal(['send_buffer']);
    expect(guard.admit(1)).to.equal(false);
    guard.stop();
  });

  it('trips when nothing was flushed within drainTimeoutMs, not while writes keep completing', async () => {
    const socket = { bufferedAmount: 10 };
    let tripped: (limit: string) => void = () => undefined;
    const trip = new Promise<string>((resolve) => (tripped = resolve));
    const guard = new SendBufferGuard(socket, { maxBytes: 1000, drainTimeoutMs: 30 }, (l) => tripped(l));
    guard.wrote();
    const flusher = setInterval(() => guard.flushed(), 5);
    await new Promise((resolve) => setTimeout(resolve, 100)); // a span of time, not a state: 3 drain periods
    clearInterval(flusher);
    const started = Date.now();
    expect(await trip).to.equal('send_drain');
    expect(Date.now() - started).to.be.at.most(200);
  });
});

describe('resolveServerOptions: connection limits', () => {
  it('normalises allowedOrigins and rejects what is not an origin', () => {
    const o = resolveServerOptions({ ...base(), allowedOrigins: ['HTTPS://Example.com:443'] });
    expect([...o.allowedOrigins!]).to.deep.equal(['https://example.com']);
    expect(resolveServerOptions(base()).allowedOrigins).to.equal(undefined);
    for (const bad of ['example.com', 'https://example.com/path', 'null']) {
      expect(() => resolveServerOptions({ ...base(), allowedOrigins: [bad] }))
        .to.throw(ConfigError)
        .with.property('field', 'allowedOrigins');
    }
  });

  it('validates the new limits as positive numbers', () => {
    for (const limits of [{ maxSendBufferBytes: 0 }, { preHelloMaxSocketBytes: -1 }]) {
      expect(() => resolveServerOptions({ ...base(), limits })).to.throw(ConfigError);
    }
    expect(() => resolveServerOptions({ ...base(), timings: { sendDrainTimeoutMs: 0 } })).to.throw(
      ConfigError,
    );
  });
});
