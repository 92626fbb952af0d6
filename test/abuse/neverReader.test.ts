import { randomBytes } from 'node:crypto';
import type { RawClient } from '../helpers/rawClient.ts';
import { testAuth } from '../../harness/startTestCluster.ts';
import type { AbuseNode } from './AbuseNode.ts';
import { describeAbuse, expectNoProblems, goodClientProblems } from './abuseKit.ts';
import { describeHostile, rawTextFrame, writeRaw } from './hostile.ts';

const MiB = 1024 * 1024;
/** What a never-reading client may cost the node before it is closed or throttled, MB. */
const NEVER_READER_PEAK_MB = 50;

/**
 * After the attack: whether the node dropped the hostile connection (its connection count fell back to the good
 * client's one), then lets the hostile read again to see what the server had sent and how it ended.
 */
async function settle(node: AbuseNode, hostile: RawClient): Promise<string> {
  const connections = await node.memory(false, 5000).then(
    (m) => m.connections,
    () => NaN,
  );
  const dropped = connections <= 1;
  const count = (t: string): number => hostile.frames.flat().filter((e) => e.t === t).length;
  hostile.ws.resume();
  await hostile.closed(5000).catch(() => undefined);
  return `node dropped it while unread: ${dropped}; after reading again: ${count('PONG')} PONG, ${count('PUB')} PUB, ${describeHostile(hostile)}`;
}

describeAbuse('a client that never reads its socket', (kit) => {
  it('40 PINGs carrying 2 MiB `x` each', async () => {
    let hostile: RawClient | undefined;
    // Random text: nothing on the way compresses it.
    const frames = Array.from({ length: 40 }, (_, i) =>
      rawTextFrame(
        Buffer.from(JSON.stringify([{ t: 'PING', x: `${i}-${randomBytes(1.5 * MiB).toString('base64')}` }])),
        false,
      ),
    );
    const r = await kit().attack('never-reader, 40 × 2 MiB PINGs', async ({ connect, node, goodAnswers }) => {
      hostile = await connect({ perMessageDeflate: false });
      await hostile.hello(testAuth('pinger'));
      hostile.ws.pause();
      for (const f of frames) await writeRaw(hostile, f);
      await goodAnswers(80);
      return settle(node, hostile);
    });
    expectNoProblems(goodClientProblems(r, { peakGrowthMb: NEVER_READER_PEAK_MB }));
  });

  it('30 MB of PUBs to a subscriber that never reads', async () => {
    let hostile: RawClient | undefined;
    const topic = `abuse.topic.${randomBytes(4).toString('hex')}`;
    const r = await kit().attack('never-reader, 30 MB of PUBs', async ({ connect, node, goodAnswers }) => {
      hostile = await connect({ perMessageDeflate: false });
      await hostile.hello(testAuth('subscriber'));
      hostile.send([{ t: 'SUB', eid: topic }]);
      await hostile.nextOfType('SUB_OK', 10_000);
      hostile.ws.pause();
      await node.publish(topic, 300, 100 * 1024);
      await goodAnswers(80);
      return settle(node, hostile);
    });
    expectNoProblems(goodClientProblems(r, { peakGrowthMb: NEVER_READER_PEAK_MB }));
  });
});
