import { expect } from 'chai';
import type { Socket } from 'node:net';
import { RawClient, type Envelope } from '../../helpers/rawClient.ts';
import { testAuth } from '../../../harness/startTestCluster.ts';
import { describeEachServerEnv } from './serverTestKit.ts';

/** Bytes the client's TCP socket has read so far (ws keeps the socket private). */
const bytesRead = (c: RawClient): number => (c.ws as unknown as { _socket: Socket })._socket.bytesRead;

/** Sends a REQUEST to `Test.slow` (replies with the message it got) and returns the RESOLVE and the bytes read. */
async function roundTrip(
  c: RawClient,
  cmid: string,
  text: string,
): Promise<{ bytes: number; chars: number }> {
  const framesBefore = c.frames.length;
  const before = bytesRead(c);
  c.send([{ t: 'REQUEST', eid: 'Test.slow', cmid, tid: cmid, msg: { string: text } }]);
  const resolve = await c.next((e: Envelope) => e.t === 'RESOLVE' && e.cmid === cmid, 10_000);
  expect((resolve.msg as { string: string }).string).to.equal(`${text}:FromSlow`);
  const chars = c.frames
    .slice(framesBefore)
    .reduce((sum, f) => sum + Buffer.byteLength(JSON.stringify(f)), 0);
  return { bytes: bytesRead(c) - before, chars };
}

describeEachServerEnv(
  'MatsSocketServer permessage-deflate (2.5)',
  { nodes: 1, envs: ['in-memory + SQLite'] },
  (ctx) => {
    it('negotiates it without context takeover; frames under the threshold go uncompressed, larger ones compressed', async () => {
      const c = await RawClient.connect(ctx().cluster.nodes[0]!.url);
      try {
        expect(c.ws.extensions).to.equal('permessage-deflate');
        // The negotiated parameters, as ws recorded them from the server's response.
        const negotiated = (c.ws as unknown as { _extensions: Record<string, { params: object }> })
          ._extensions;
        expect(negotiated['permessage-deflate']!.params).to.include({
          server_no_context_takeover: true,
          client_no_context_takeover: true,
        });
        await c.hello(testAuth('standard'));
        const small = await roundTrip(c, 'small', 'abc');
        expect(small.bytes, 'a small frame is sent as it is').to.be.at.least(small.chars);
        const large = await roundTrip(c, 'large', 'x'.repeat(20_000));
        expect(large.bytes, 'a large frame is compressed').to.be.below(large.chars / 4);
      } finally {
        c.ws.terminate();
      }
    });
  },
);

describeEachServerEnv(
  'MatsSocketServer with compression: false',
  { nodes: 1, envs: ['in-memory + SQLite'], server: { compression: false } },
  (ctx) => {
    it('declines permessage-deflate even when the client offers it', async () => {
      const c = await RawClient.connect(ctx().cluster.nodes[0]!.url);
      try {
        expect(c.ws.extensions).to.equal('');
        await c.hello(testAuth('standard'));
        const large = await roundTrip(c, 'large', 'x'.repeat(20_000));
        expect(large.bytes).to.be.at.least(large.chars);
      } finally {
        c.ws.terminate();
      }
    });
  },
);
