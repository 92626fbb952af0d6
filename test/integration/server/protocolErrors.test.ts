import { expect } from 'chai';
import { HandshakeRefusedError, RawClient } from '../../helpers/rawClient.ts';
import { testAuth } from '../../../harness/startTestCluster.ts';
import { connectSession, describeEachServerEnv } from './serverTestKit.ts';

/** A second client completes a request: the node keeps serving others after a protocol error. */
async function assertStillServing(url: string): Promise<void> {
  const { client } = await connectSession(url);
  client.send([
    { t: 'REQUEST', eid: 'Test.resolveInIncomingHandler', tid: 'alive', cmid: 1, msg: { number: 1 } },
  ]);
  expect((await client.nextOfType('RESOLVE')).cmid).to.equal('1');
  await client.close();
}

describeEachServerEnv(
  'MatsSocketServer protocol errors and close codes',
  { nodes: 1, server: { limits: { maxFrameBytes: 200_000 } } },
  (ctx) => {
    const url = (): string => ctx().cluster.nodes[0]!.url;

    async function expectClose(
      frames: (object[] | string | Buffer)[],
      code: number,
      hello = false,
    ): Promise<string> {
      const client = await RawClient.connect(url());
      if (hello) await client.hello(testAuth('standard'));
      for (const f of frames) client.send(f);
      const closed = await client.closed();
      expect(closed.code, closed.reason).to.equal(code);
      expect(closed.reason).to.be.a('string').and.not.equal('');
      await assertStillServing(url());
      return closed.reason;
    }

    it('refuses a handshake without the matssocket subprotocol with HTTP 400', async () => {
      const err = await RawClient.connect(url(), { protocols: ['other'] }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(HandshakeRefusedError).with.property('status', 400);
    });

    it('echoes the matssocket subprotocol', async () => {
      const client = await RawClient.connect(url());
      expect(client.ws.protocol).to.equal('matssocket');
      await client.close();
    });

    const malformed: [string, object[] | string | Buffer][] = [
      ['bad JSON', '[{"t":"HELLO"'],
      ['not an array', '{"t":"PING","x":"1"}'],
      ['a non-object element', '[1]'],
      ['an unknown type', [{ t: 'BOGUS' }]],
      ['a server-only type', [{ t: 'WELCOME', sid: 'x' }]],
      ['a wrong field type (auth as number)', [{ t: 'HELLO', clv: 'c', an: 'a', av: '1', auth: 5 }]],
      ['a HELLO without clv', [{ t: 'HELLO', an: 'a', av: '1', auth: testAuth('standard') }]],
      ['a too long an', [{ t: 'HELLO', clv: 'c', an: 'x'.repeat(256), av: '1', auth: testAuth('standard') }]],
      ['a binary frame', Buffer.from('[]')],
      ['PING before HELLO', [{ t: 'PING', x: '1' }]],
      ['ACK before HELLO', [{ t: 'ACK', smid: 'a' }]],
      ['ACK2 before HELLO', [{ t: 'ACK2', cmid: 'a' }]],
      ['PONG before HELLO', [{ t: 'PONG', x: '1' }]],
    ];
    for (const [what, frame] of malformed) {
      it(`closes 4004 on ${what}`, async () => {
        await expectClose([frame], 4004);
      });
    }

    const malformedAfterHello: [string, object[] | string][] = [
      ['SEND without tid', [{ t: 'SEND', eid: 'Test.single', cmid: 1 }]],
      ['SEND without cmid', [{ t: 'SEND', eid: 'Test.single', tid: 't' }]],
      ['RESOLVE without smid', [{ t: 'RESOLVE', tid: 't', cmid: 1 }]],
      ['a negative numeric cmid', [{ t: 'SEND', eid: 'Test.single', tid: 't', cmid: -1 }]],
      ['ACK with neither smid nor ids', [{ t: 'ACK' }]],
      ['ACK with an empty ids list', [{ t: 'ACK', ids: [] }]],
      [
        'a double SUB',
        [
          { t: 'SUB', eid: 'topic.a' },
          { t: 'SUB', eid: 'topic.a' },
        ],
      ],
      ['a blank SUB', [{ t: 'SUB', eid: '  ' }]],
    ];
    for (const [what, frame] of malformedAfterHello) {
      it(`closes 4004 on ${what} after HELLO`, async () => {
        await expectClose([frame], 4004, true);
      });
    }

    it('closes 1008 "Missing Authorization" for a first frame without auth', async () => {
      const reason = await expectClose([[{ t: 'HELLO', clv: 'c', an: 'a', av: '1' }]], 1008);
      expect(reason).to.equal('Missing Authorization');
    });

    it('closes 1008 when initial authentication fails', async () => {
      const reason = await expectClose(
        [[{ t: 'HELLO', clv: 'c', an: 'a', av: '1', auth: testAuth('fail_initial') }]],
        1008,
      );
      expect(reason).to.match(/^Initial Auth-eval: /);
    });

    it('closes 1008 on information-bearing messages before HELLO', async () => {
      await expectClose(
        [[{ t: 'SEND', eid: 'Test.single', tid: 't', cmid: 1, auth: testAuth('standard') }]],
        1008,
      );
    });

    it('closes 1008 on a second HELLO', async () => {
      const reason = await expectClose([[{ t: 'HELLO', clv: 'c', an: 'a', av: '1' }]], 1008, true);
      expect(reason).to.include('second HELLO');
    });

    it('closes 1008 on a topic id longer than 256 characters', async () => {
      await expectClose([[{ t: 'SUB', eid: 'x'.repeat(257) }]], 1008, true);
    });

    it('closes 1009 on a frame over 20 KiB before HELLO', async () => {
      const big = JSON.stringify([
        { t: 'HELLO', clv: 'x'.repeat(21 * 1024), an: 'a', av: '1', auth: testAuth('u') },
      ]);
      await expectClose([big], 1009);
    });

    it('accepts a 100 KiB frame after HELLO, but closes 1009 over the (configured) limit', async () => {
      const { client } = await connectSession(url());
      client.send([
        { t: 'SEND', eid: 'Test.ignoreInIncomingHandler', tid: 't', cmid: 1, msg: 'x'.repeat(100 * 1024) },
      ]);
      expect((await client.nextOfType('ACK')).cmid).to.equal('1');
      client.send([
        { t: 'SEND', eid: 'Test.ignoreInIncomingHandler', tid: 't', cmid: 2, msg: 'x'.repeat(210_000) },
      ]);
      const closed = await client.closed();
      expect(closed.code).to.equal(1009);
      expect(closed.reason).to.not.equal('');
      await assertStillServing(url());
    });

    it('accepts an empty frame and ignores unknown fields', async () => {
      const { client } = await connectSession(url());
      client.send('[]');
      client.send([{ t: 'PING', x: '1', whatever: { nested: true } }]);
      expect(await client.nextOfType('PONG')).to.deep.equal({ t: 'PONG', x: '1' });
      await client.close();
    });
  },
);
