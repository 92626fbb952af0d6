import { expect } from 'chai';
import { deflateForWebSocket, rawTextFrame, writeRaw } from '../../abuse/hostile.ts';
import { RawClient } from '../../helpers/rawClient.ts';
import { testAuth } from '../../../harness/startTestCluster.ts';
import { connectSession, describeEachServerEnv } from './serverTestKit.ts';

/** mulberry32: a small seeded PRNG, so a failing run can be repeated with FUZZ_SEED. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const MAX_FRAMES = Number(process.env.FUZZ_FRAMES ?? 3000);
const MAX_MS = Number(process.env.FUZZ_MS ?? 20_000);
const FUZZ_CONNECTIONS = 8;
/** Share of frames that are big: many envelopes, many ids, long strings, or prepared (compressed) wire frames. */
const BIG_FRAME_SHARE = 0.03;

/** A frame the fuzzer writes: text or binary through `ws`, or prepared wire bytes straight to the socket. */
type FuzzFrame = string | Buffer | { wire: Buffer };

function generator(random: () => number) {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const int = (n: number): number => Math.floor(random() * n);
  const ids = ['0', '1', 2, 'x', -1, 1.5, null, '', 'a'.repeat(300), 2 ** 53 + 2, {}, []];
  const eids = [
    'Test.single',
    'Test.resolveInIncomingHandler',
    'Test.ignoreInIncomingHandler',
    'Test.throwsInIncomingHandler',
    'Test.publishInHandler',
    'Test.server.send.inHandler',
    'Test.server.request.direct',
    'Test.closeThisSession',
    'NON EXISTING!',
    '',
    'x'.repeat(300),
  ];
  const auths = [
    testAuth('fuzz'),
    testAuth('fail_reevaluate'),
    testAuth('fail_initial'),
    'garbage',
    testAuth('enableAllDebugOptions'),
    5,
  ];
  const types = [
    'HELLO',
    'SEND',
    'REQUEST',
    'RESOLVE',
    'REJECT',
    'ACK',
    'NACK',
    'ACK2',
    'SUB',
    'UNSUB',
    'AUTH',
    'PING',
    'PONG',
    'WELCOME',
    'BOGUS',
    7,
  ];
  const valid = (): Record<string, unknown> => {
    switch (
      pick([
        'HELLO',
        'SEND',
        'REQUEST',
        'RESOLVE',
        'ACK',
        'NACK',
        'ACK2',
        'SUB',
        'UNSUB',
        'AUTH',
        'PING',
        'PONG',
      ])
    ) {
      case 'HELLO':
        return {
          t: 'HELLO',
          clv: 'fuzz',
          an: 'Fuzz',
          av: '1',
          auth: testAuth('fuzz'),
          ...(random() < 0.3 ? { sid: 'NoSuchSession123' } : {}),
        };
      case 'SEND':
      case 'REQUEST':
        return {
          t: pick(['SEND', 'REQUEST']),
          eid: pick(eids),
          tid: `f${int(100)}`,
          cmid: int(50),
          msg: pick([{}, { number: 1 }, 'topic.fuzz', null, [1, 2]]),
          ...(random() < 0.3 ? { rd: int(256) } : {}),
        };
      case 'RESOLVE':
        return { t: pick(['RESOLVE', 'REJECT']), smid: `s${int(10)}`, tid: 't', cmid: int(50), msg: {} };
      case 'ACK':
      case 'NACK':
        return random() < 0.5
          ? { t: pick(['ACK', 'NACK']), smid: `s${int(10)}` }
          : { t: 'ACK', ids: [`s${int(10)}`, `s${int(10)}`] };
      case 'ACK2':
        return { t: 'ACK2', cmid: int(50) };
      case 'SUB':
      case 'UNSUB':
        return {
          t: pick(['SUB', 'UNSUB']),
          eid: pick(['topic.fuzz', `topic.${int(5)}`, 'Test.noAuth.x']),
          ...(random() < 0.3 ? { smid: pick(['abc.1', 'zz', '']) } : {}),
        };
      case 'AUTH':
        return { t: 'AUTH', auth: pick(auths) };
      default:
        return { t: pick(['PING', 'PONG']), x: pick(ids) };
    }
  };
  const mutate = (e: Record<string, unknown>): unknown => {
    const m = { ...e };
    switch (int(8)) {
      case 0:
        delete m[pick(Object.keys(m))];
        return m;
      case 1:
        m[pick(Object.keys(m))] = pick([1, 'x', null, true, [], {}, -5, 'y'.repeat(1000)]);
        return m;
      case 2:
        m.t = pick(types);
        return m;
      case 3:
        m.cmid = pick(ids);
        return m;
      case 4:
        m.auth = pick(auths);
        return m;
      case 5:
        return pick([1, 'str', null, [e], true]);
      default:
        return m;
    }
  };
  const longString = (): string => pick(['a', 'é', '\u{1F600}', '"', '\\']).repeat(1000 + int(100_000));
  /**
   * A big frame, each kind small enough that a few dozen keep the run fast: hundreds of envelopes, thousands of ids
   * in ACK/NACK/ACK2, fields of up to ~100 K characters, or wire bytes written past `ws`: a compressed frame that
   * inflates ~1000 times, a compressed frame of garbage, RSV1 whether or not deflate was negotiated.
   */
  const big = (): FuzzFrame => {
    switch (int(6)) {
      case 0:
        return JSON.stringify(
          Array.from({ length: 100 + int(900) }, () => (random() < 0.2 ? mutate(valid()) : valid())),
        );
      case 1: {
        const list = Array.from({ length: 1000 + int(9000) }, (_, i) =>
          random() < 0.1 ? pick(ids) : `s${i}`,
        );
        return JSON.stringify([{ t: pick(['ACK', 'NACK', 'ACK2']), ids: list }]);
      }
      case 2: {
        const e = valid();
        e[pick([...Object.keys(e), 'desc', 'tid', 'eid', 'x', 'auth', 'msg'])] = longString();
        return JSON.stringify([e]);
      }
      case 3: {
        const inflated = JSON.stringify([{ ...valid(), msg: 'z'.repeat(100_000 + int(2_000_000)) }]);
        return { wire: rawTextFrame(deflateForWebSocket(inflated), true) };
      }
      case 4:
        return {
          wire: rawTextFrame(Buffer.from(Array.from({ length: 1 + int(2000) }, () => int(256))), true),
        };
      default:
        return { wire: rawTextFrame(Buffer.from(JSON.stringify([valid()])), random() < 0.5) };
    }
  };
  /** One frame: mostly arrays of (possibly mutated) envelopes, sometimes garbage text or binary, a few big ones. */
  return (): FuzzFrame => {
    const r = random();
    if (r < BIG_FRAME_SHARE) return big();
    if (r < 0.04) return Buffer.from([int(256), int(256)]);
    if (r < 0.1) return pick(['', '{', '[', 'null', '{}', '[[]]', '"x"', '[1,2', 'x'.repeat(int(30_000))]);
    const n = 1 + int(4);
    const envelopes = Array.from({ length: n }, () => (random() < 0.4 ? mutate(valid()) : valid()));
    const text = JSON.stringify(envelopes);
    if (random() < 0.05) return text.slice(0, int(text.length));
    return text;
  };
}

describeEachServerEnv('MatsSocketServer fuzz', { nodes: 1 }, (ctx) => {
  it(`survives ${MAX_FRAMES} random and mutated frames (or ${MAX_MS / 1000} s) while serving a good client`, async function () {
    this.timeout(MAX_MS + 30_000);
    const seed = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
    console.log(`    fuzz seed ${seed} (repeat with FUZZ_SEED=${seed})`);
    const random = prng(seed);
    const nextFrame = generator(random);
    const node = ctx().cluster.nodes[0]!;
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const heapBefore = process.memoryUsage().heapUsed;
    let sent = 0;
    const deadline = Date.now() + MAX_MS;
    const fuzzers: RawClient[] = [];
    const fuzzer = async (): Promise<void> => {
      while (sent < MAX_FRAMES && Date.now() < deadline) {
        let client: RawClient;
        try {
          // Some connections decline permessage-deflate: their RSV1 frames are protocol errors for `ws` to refuse.
          client = await RawClient.connect(node.url, { perMessageDeflate: random() < 0.8 });
        } catch {
          continue;
        }
        fuzzers.push(client);
        // Most connections get a valid session first, so the frames reach the established-session paths.
        if (random() < 0.7)
          await client
            .hello(testAuth(random() < 0.2 ? 'enableAllDebugOptions' : 'fuzz'))
            .catch(() => undefined);
        while (!client.closeInfo && sent < MAX_FRAMES && Date.now() < deadline) {
          const frame = nextFrame();
          if (typeof frame === 'object' && 'wire' in frame) await writeRaw(client, frame.wire);
          else client.send(frame);
          sent++;
          await new Promise((r) => setTimeout(r, random() * 3));
        }
        if (!client.closeInfo) client.terminate();
      }
    };
    const good = async (): Promise<number> => {
      const { client } = await connectSession(node.url, 'good');
      let completed = 0;
      for (let i = 0; sent < MAX_FRAMES && Date.now() < deadline; i++) {
        const eid = i % 2 === 0 ? 'Test.resolveInIncomingHandler' : 'Test.single';
        client.send([{ t: 'REQUEST', eid, tid: `good${i}`, cmid: i, msg: { number: i, string: 'g' } }]);
        const reply = await client.next((e) => e.t === 'RESOLVE' && e.cmid === String(i), 5000);
        if (reply.smid) client.send([{ t: 'ACK', smid: reply.smid }]);
        client.send([{ t: 'ACK2', cmid: i }]);
        completed++;
      }
      await client.close(4000, 'done');
      return completed;
    };
    try {
      const [completed] = await Promise.all([
        good(),
        ...Array.from({ length: FUZZ_CONNECTIONS }, () => fuzzer()),
      ]);
      expect(completed).to.be.greaterThan(10);
      for (const c of fuzzers) if (!c.closeInfo) c.terminate();
      // Every fuzz connection ends: live sessions and connections go back to 0.
      const until = Date.now() + 10_000;
      while (
        (node.server.getActiveSessions().length > 0 || node.server.connectionCount > 0) &&
        Date.now() < until
      ) {
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(node.server.getActiveSessions()).to.have.length(0);
      expect(node.server.connectionCount).to.equal(0);
      expect(unhandled).to.deep.equal([]);
      const heapGrowthMb = (process.memoryUsage().heapUsed - heapBefore) / 1024 / 1024;
      expect(heapGrowthMb).to.be.lessThan(300);
      console.log(
        `    ${sent} fuzz frames, ${completed} good requests, heap growth ${heapGrowthMb.toFixed(1)} MiB`,
      );
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
