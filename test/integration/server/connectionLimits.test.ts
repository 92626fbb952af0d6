import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { InMemoryMetrics } from '../../../src/metrics/InMemoryMetrics.ts';
import type { SessionRemovedEvent } from '../../../src/server/ServerEvents.ts';
import type { MatsSocketServer } from '../../../src/server/MatsSocketServer.ts';
import { HandshakeRefusedError, RawClient } from '../../helpers/rawClient.ts';
import { testAuth, testAuthPlugin } from '../../../harness/startTestCluster.ts';
import { connectSession, describeEachServerEnv, waitAnswered } from './serverTestKit.ts';

const KiB = 1024;
const TRIPS = 'matssocket_connection_limit_trips_total';

/** Resolves with the SessionRemoved event of `sid`. */
function removedEvent(server: MatsSocketServer, sid: string): Promise<SessionRemovedEvent> {
  return new Promise((resolve) => {
    const off = server.on('sessionRemoved', (e) => {
      if (e.sessionId !== sid) return;
      off();
      resolve(e);
    });
  });
}

/** A session on a connection with or without permessage-deflate. */
async function sessionOn(url: string, deflate: boolean): Promise<{ client: RawClient; sid: string }> {
  const client = await RawClient.connect(url, { perMessageDeflate: deflate });
  const welcome = await client.hello(testAuth('standard'));
  return { client, sid: welcome.sid as string };
}

/** Rejects with the HTTP status of a refused upgrade, or resolves with the client. */
async function refusedStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  try {
    const client = await RawClient.connect(url, { headers });
    await client.close();
    return 101;
  } catch (err) {
    if (err instanceof HandshakeRefusedError) return err.status;
    throw err;
  }
}

const sendBufferMetrics = new InMemoryMetrics();

describeEachServerEnv(
  'Connection limits: origin, unauthenticated peers, PING, send buffer, recorder',
  {
    nodes: 1,
    envs: ['in-memory + SQLite'],
    server: {
      metrics: sendBufferMetrics,
      allowedOrigins: ['https://good.example', 'http://localhost:8080'],
      limits: {
        maxUnauthenticatedConnectionsPerIp: 3,
        preHelloMaxSocketBytes: 32 * KiB,
        maxPingIdLength: 64,
        maxSendBufferBytes: 2 * 1024 * KiB,
        envelopesRecordedMaxBytes: 64 * KiB,
        recordedFieldMaxChars: 256,
      },
      timings: { helloTimeoutMs: 4000, sendDrainTimeoutMs: 20_000, wsPingIntervalMs: 0 },
      topicReplayRetentionMs: 0,
    },
  },
  (ctx) => {
    const node = () => ctx().cluster.nodes[0]!;
    const trips = (limit: string) => sendBufferMetrics.total(TRIPS, { limit });

    it('refuses an upgrade from an Origin not in allowedOrigins with 403; allows listed ones and none', async () => {
      expect(await refusedStatus(node().url, { Origin: 'https://evil.example' })).to.equal(403);
      expect(trips('origin')).to.equal(1);
      expect(await refusedStatus(node().url, { Origin: 'https://GOOD.example:443' })).to.equal(101);
      expect(await refusedStatus(node().url, { Origin: 'http://localhost:8080' })).to.equal(101);
      expect(await refusedStatus(node().url)).to.equal(101);
    });

    it('refuses the upgrade past maxUnauthenticatedConnectionsPerIp with 503; HELLO frees the slot', async () => {
      const waiting = [];
      for (let i = 0; i < 3; i++) waiting.push(await RawClient.connect(node().url));
      expect(await refusedStatus(node().url)).to.equal(503);
      expect(trips('unauthenticated_per_ip')).to.equal(1);
      await waiting[0]!.hello(testAuth('standard'));
      const fourth = await RawClient.connect(node().url);
      for (const c of [...waiting, fourth]) await c.close(4000, 'done');
    });

    it('closes 1009 once a pre-HELLO peer sent preHelloMaxSocketBytes, without waiting for its frame to end', async () => {
      const client = await RawClient.connect(node().url, { perMessageDeflate: false });
      // A 20 MiB text message announced in fragments: the old code buffered every fragment until the HELLO timeout.
      const fragment = Buffer.alloc(16 * KiB, 'a');
      for (let i = 0; i < 4; i++) client.ws.send(fragment, { fin: false, binary: false });
      const closed = await client.closed(2000);
      expect(closed.code).to.equal(1009);
      expect(closed.reason).to.match(/before HELLO/);
      expect(trips('pre_hello_bytes')).to.be.greaterThan(0);
    });

    it('closes 1009 on a compressed pre-HELLO frame past preHelloMaxCompressedBytes, before inflating it', async () => {
      const client = await RawClient.connect(node().url);
      // ~16 KB on the wire, 16 MiB inflated: the old code inflated it whole, then closed on its size.
      client.send(JSON.stringify([{ t: 'HELLO', clv: 'x'.repeat(16 * 1024 * KiB) }]));
      const closed = await client.closed();
      expect(closed.code).to.equal(1009);
      expect(closed.reason).to.match(/compressed bytes received before HELLO/);
      expect(trips('pre_hello_compressed_bytes')).to.equal(1);
    });

    it('takes a compressed HELLO within the limits, and compressed frames of any size after it', async () => {
      const client = await RawClient.connect(node().url);
      const welcome = await client.hello(testAuth('standard'), { an: 'a'.repeat(200) });
      expect(welcome.t).to.equal('WELCOME');
      client.send([
        {
          t: 'SEND',
          eid: 'Test.ignoreInIncomingHandler',
          tid: 'big',
          cmid: 'big1',
          msg: 'm'.repeat(1024 * KiB),
        },
      ]);
      await client.next((e) => e.t === 'ACK' && e.cmid === 'big1');
      await client.close(4000, 'done');
    });

    it('closes 4004 on a PING whose x is longer than maxPingIdLength', async () => {
      const { client } = await connectSession(node().url);
      client.send([{ t: 'PING', x: 'p'.repeat(64) }]);
      expect((await client.nextOfType('PONG')).x).to.equal('p'.repeat(64));
      client.send([{ t: 'PING', x: 'p'.repeat(65) }]);
      const closed = await client.closed();
      expect(closed).to.deep.equal({ code: 4004, reason: 'PING x longer than 64 characters' });
      expect(trips('ping_id_length')).to.equal(1);
    });

    for (const deflate of [false, true]) {
      it(`terminates a subscriber that does not read once PUBs would pass maxSendBufferBytes (deflate: ${deflate})`, async () => {
        const { client, sid } = await sessionOn(node().url, deflate);
        client.send([{ t: 'SUB', eid: 'limits.unread' }]);
        await client.nextOfType('SUB_OK');
        client.ws.pause();
        const removed = removedEvent(node().server, sid);
        // Incompressible, so that permessage-deflate does not shrink it.
        const big = randomBytes(384 * KiB).toString('base64');
        try {
          // Until it trips: the kernel's socket buffers take some MiB first (old code: 32 MiB, all buffered).
          const before = trips('send_buffer');
          for (let i = 0; i < 64 && trips('send_buffer') === before; i++) {
            await node().server.publish(`unread.${i}`, 'limits.unread', big);
          }
          const event = await removed;
          expect(event.type).to.equal('DEREGISTER');
          expect(event.reason).to.match(/^Send buffer full/);
          expect(trips('send_buffer')).to.be.greaterThan(0);
        } finally {
          client.terminate();
        }
      });
    }

    it('keeps the recorded envelopes of a session within envelopesRecordedMaxBytes', async () => {
      const { client, sid } = await connectSession(node().url);
      const cmids: string[] = [];
      // The longest tid the parser accepts (1024 characters), 300 times: more than the byte bound can keep.
      for (let i = 0; i < 300; i++) {
        cmids.push(`c${i}`);
        client.send([
          {
            t: 'SEND',
            eid: 'Test.ignoreInIncomingHandler',
            tid: `${i}:${'t'.repeat(1000)}`,
            cmid: `c${i}`,
          },
        ]);
      }
      await client.next(
        (e) =>
          e.t === 'ACK' && (e.cmid === 'c299' || (e.ids as string[] | undefined)?.includes('c299') === true),
      );
      const session = node()
        .server.getActiveSessions()
        .find((s) => s.sessionId === sid)!;
      const chars = session.lastEnvelopes.reduce(
        (sum, e) => sum + [e.t, e.cmid, e.smid, e.eid, e.tid, e.desc, ...(e.ids ?? [])].join('').length,
        0,
      );
      expect(chars * 2).to.be.lessThan(64 * KiB);
      const lastSend = session.lastEnvelopes.filter((e) => e.t === 'SEND').at(-1)!;
      expect(lastSend.tid)
        .to.have.length(257)
        .and.match(/^299:t+…$/);
      await client.close(4000, 'done');
    });
  },
);

const drainMetrics = new InMemoryMetrics();

/** Reevaluations of `TestAuth:hold:…` wait until the test calls `releaseHeld()`. */
let releaseHeld: () => void = () => undefined;
let held = Promise.resolve();
function holdReevaluations(): void {
  held = new Promise((resolve) => (releaseHeld = resolve));
}
function holdingAuthPlugin() {
  const plugin = testAuthPlugin();
  const reevaluate = plugin.reevaluateAuthentication.bind(plugin);
  plugin.reevaluateAuthentication = async (ctx, value, principal) => {
    if (value.includes(':hold:')) await held;
    return reevaluate(ctx, value, principal);
  };
  return plugin;
}

describeEachServerEnv(
  'Connection limits: a peer that sends but never reads',
  {
    nodes: 1,
    envs: ['in-memory + SQLite'],
    auth: holdingAuthPlugin,
    server: {
      metrics: drainMetrics,
      limits: { maxSendBufferBytes: 256 * 1024 * KiB, maxQueuedInboundBytes: 3 * 1024 * KiB },
      timings: { sendDrainTimeoutMs: 300, wsPingIntervalMs: 0, idleTimeoutMs: 60_000 },
      topicReplayRetentionMs: 0,
    },
  },
  (ctx) => {
    const node = () => ctx().cluster.nodes[0]!;

    it('is terminated after sendDrainTimeoutMs without a flush, though its PINGs keep coming', async () => {
      const { client, sid } = await sessionOn(node().url, false);
      client.send([{ t: 'SUB', eid: 'limits.drain' }]);
      await client.nextOfType('SUB_OK');
      client.ws.pause();
      const removed = removedEvent(node().server, sid);
      let pings = 0;
      const pinger = setInterval(() => client.send([{ t: 'PING', x: String(pings++) }]), 25);
      try {
        const big = 'd'.repeat(1024 * KiB);
        for (let i = 0; i < 24 && drainMetrics.total(TRIPS) === 0; i++) {
          await node().server.publish(`drain.${i}`, 'limits.drain', big);
        }
        const event = await removed;
        expect(event.type).to.equal('DEREGISTER');
        expect(event.reason).to.match(/^Send buffer not drained/);
        expect(drainMetrics.total(TRIPS, { limit: 'send_drain' })).to.equal(1);
        expect(pings).to.be.greaterThan(4);
      } finally {
        clearInterval(pinger);
        client.terminate();
      }
    });

    it('stops reading a connection whose queued frames pass maxQueuedInboundBytes, and resumes', async () => {
      const client = await RawClient.connect(node().url);
      await client.hello(testAuth('hold'));
      holdReevaluations();
      const cmids = Array.from({ length: 8 }, (_, i) => `q${i}`);
      for (const cmid of cmids) {
        client.send([
          {
            t: 'SEND',
            eid: 'Test.ignoreInIncomingHandler',
            tid: 'q',
            cmid,
            msg: randomBytes(768 * KiB).toString('base64'),
          },
        ]);
      }
      try {
        const deadline = Date.now() + 3000;
        while (drainMetrics.total(TRIPS, { limit: 'inbound_queue' }) === 0 && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 10)); // polls a counter (no event to await)
        }
        expect(drainMetrics.total(TRIPS, { limit: 'inbound_queue' })).to.equal(1);
      } finally {
        releaseHeld();
      }
      await waitAnswered(client, 'ACK', cmids, 5000);
      await client.close(4000, 'done');
    });
  },
);
