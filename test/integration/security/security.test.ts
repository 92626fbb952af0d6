import { expect } from 'chai';
import { RawClient, type Envelope } from '../../helpers/rawClient.ts';
import { testAuth } from '../../../harness/startTestCluster.ts';
import { connectSession, describeEachServerEnv } from '../server/serverTestKit.ts';
import { INJECTION_IDS, storeTableNames } from './securityKit.ts';

/** Frame size limit after HELLO in this suite (small, so the oversize test sends little). */
const MAX_FRAME_BYTES = 64 * 1024;
const SESSION_CAP = 3;

describeEachServerEnv(
  'Security',
  {
    nodes: 1,
    server: { limits: { maxFrameBytes: MAX_FRAME_BYTES, maxSessionsPerUser: SESSION_CAP } },
  },
  (ctx) => {
    const node = () => ctx().cluster.nodes[0]!;

    describe('session hijack', () => {
      it("another user's session id closes 1008 'does not match'; the victim's pending message is not leaked", async () => {
        const victim = await connectSession(node().url, 'victim');
        victim.client.terminate();
        // A message for the victim, waiting in its outbox while it is away.
        const secret = { string: 'the victim only', number: 42 };
        await eventuallyTrue(() => node().server.getActiveSessions().length === 0);
        expect(await node().server.send(victim.sid, 'secretTrace', 'ClientSide.terminator', secret)).to.equal(
          true,
        );

        const attacker = await RawClient.connect(node().url);
        attacker.send([
          { t: 'HELLO', clv: 'c', an: 'a', av: '1', auth: testAuth('attacker'), sid: victim.sid },
        ]);
        const closed = await attacker.closed();
        expect(closed.code).to.equal(1008);
        expect(closed.reason).to.contain('does not match');
        // Nothing but the close reached the attacker: no WELCOME, no SEND with the secret.
        expect(attacker.frames.flat()).to.deep.equal([]);

        // The session is intact and the victim still gets its message, once it resumes.
        const again = await RawClient.connect(node().url);
        const welcome = await again.hello(testAuth('victim'), { sid: victim.sid });
        expect(welcome.sid).to.equal(victim.sid);
        const send = await again.nextOfType('SEND');
        expect(send).to.include({ eid: 'ClientSide.terminator', tid: 'secretTrace' });
        expect(send.msg).to.deep.equal(secret);
        again.send([{ t: 'ACK', smid: send.smid }]);
        await again.nextOfType('ACK2');
        await again.close(4000, 'done');
      });
    });

    describe('frames without authentication', () => {
      it('an information-bearing frame without auth and without HELLO closes 1008', async () => {
        const client = await RawClient.connect(node().url);
        client.send([{ t: 'SEND', eid: 'Test.ignoreInIncomingHandler', tid: 't', cmid: 1, msg: {} }]);
        expect((await client.closed()).code).to.equal(1008);
        expect(client.frames.flat()).to.deep.equal([]);
      });

      it('a HELLO without auth closes 1008', async () => {
        const client = await RawClient.connect(node().url);
        client.send([{ t: 'HELLO', clv: 'c', an: 'a', av: '1' }]);
        expect((await client.closed()).code).to.equal(1008);
        expect(client.frames.flat()).to.deep.equal([]);
      });

      it('a valid auth but no HELLO: a SEND closes 1008 and is not processed', async () => {
        const client = await RawClient.connect(node().url);
        const before = ctx().recorder.count('Test.ignoreInIncomingHandler');
        client.send([
          { t: 'SEND', eid: 'Test.ignoreInIncomingHandler', tid: 't', cmid: 1, msg: {}, auth: testAuth('x') },
        ]);
        expect((await client.closed()).code).to.equal(1008);
        expect(ctx().recorder.count('Test.ignoreInIncomingHandler')).to.equal(before);
      });

      it('an invalid authorization in HELLO closes 1008 and registers no session', async () => {
        const client = await RawClient.connect(node().url);
        client.send([{ t: 'HELLO', clv: 'c', an: 'a', av: '1', auth: 'Bearer not-a-test-auth' }]);
        expect((await client.closed()).code).to.equal(1008);
        expect(client.frames.flat()).to.deep.equal([]);
      });
    });

    describe('oversize frames', () => {
      it('before HELLO: a frame above 20 KiB closes 1009', async () => {
        const client = await RawClient.connect(node().url, { perMessageDeflate: false });
        client.send([
          { t: 'HELLO', clv: 'c', an: 'a', av: '1', auth: testAuth('big'), pad: 'x'.repeat(21 * 1024) },
        ]);
        expect((await client.closed()).code).to.equal(1009);
        expect(client.frames.flat()).to.deep.equal([]);
      });

      it('after HELLO: a frame above the limit closes 1009; one below it is processed', async () => {
        const { client } = await connectSession(node().url, 'big');
        client.send([
          {
            t: 'REQUEST',
            eid: 'Test.resolveInIncomingHandler',
            tid: 'small',
            cmid: 1,
            msg: { string: 'y'.repeat(MAX_FRAME_BYTES / 2) },
          },
        ]);
        expect((await client.nextOfType('RESOLVE')).cmid).to.equal('1');
        client.send([
          {
            t: 'SEND',
            eid: 'Test.ignoreInIncomingHandler',
            tid: 'big',
            cmid: 2,
            msg: { string: 'z'.repeat(MAX_FRAME_BYTES + 1) },
          },
        ]);
        expect((await client.closed()).code).to.equal(1009);
      });

      it('a compressed frame that inflates above the limit closes 1009 (no zip bomb)', async () => {
        const { client } = await connectSession(node().url, 'big');
        // Compresses to a few hundred bytes, inflates to 4x the limit.
        client.send([
          {
            t: 'SEND',
            eid: 'Test.ignoreInIncomingHandler',
            tid: 'b',
            cmid: 3,
            msg: '0'.repeat(4 * MAX_FRAME_BYTES),
          },
        ]);
        expect((await client.closed()).code).to.equal(1009);
      });
    });

    describe('topic authorization', () => {
      it('a denied SUB gets SUB_NO_AUTH and no PUB of that topic is received', async () => {
        const { client } = await connectSession(node().url);
        const denied = 'Test.noAuth.secrets';
        const allowed = `Security.allowed.${Date.now()}`;
        client.send([
          { t: 'SUB', eid: denied },
          { t: 'SUB', eid: allowed },
        ]);
        expect((await client.nextOfType('SUB_NO_AUTH')).eid).to.equal(denied);
        expect((await client.nextOfType('SUB_OK')).eid).to.equal(allowed);
        // Published first: by the time the allowed one arrives, the denied one would have too.
        await node().server.publish('pubDenied', denied, { secret: true });
        await node().server.publish('pubAllowed', allowed, { secret: false });
        const pub = await client.nextOfType('PUB');
        expect(pub).to.include({ eid: allowed, tid: 'pubAllowed' });
        expect(client.frames.flat().filter((e) => e.eid === denied && e.t === 'PUB')).to.deep.equal([]);
        await client.close(4000, 'done');
      });
    });

    describe('injection attempts in ids', () => {
      for (const [name, value] of Object.entries(INJECTION_IDS)) {
        it(`${name}: tid, cmid, eid, topic and appName are stored and returned verbatim`, async () => {
          const tablesBefore = await storeTableNames(ctx().cluster.db.knex);
          const client = await RawClient.connect(node().url);
          const welcome = await client.hello(testAuth('inject'), { an: value, av: value });
          const sid = welcome.sid as string;
          const sessions = await node().server.getSessions({ userId: 'inject' });
          const mine = sessions.find((s) => s.id === sid);
          expect(mine).to.include({ an: value, av: value });

          // Insta reply (inbox) and a forwarded request (Mats + outbox) with the value as tid and cmid.
          client.send([
            {
              t: 'REQUEST',
              eid: 'Test.resolveInIncomingHandler',
              tid: value,
              cmid: value,
              msg: { string: value },
            },
            {
              t: 'REQUEST',
              eid: 'Test.single',
              tid: `${value}#2`,
              cmid: `${value}#2`,
              msg: { string: value },
            },
            { t: 'SEND', eid: value, tid: value, cmid: `${value}#3`, msg: {} },
            { t: 'SUB', eid: `Security.${value}` },
          ]);
          const insta = await client.next((e) => e.t === 'RESOLVE' && e.cmid === value);
          expect(insta.tid).to.equal(value);
          expect((insta.msg as { string: string }).string).to.equal(`${value}:From_resolveInIncomingHandler`);
          const forwarded = await client.next((e) => e.t === 'RESOLVE' && e.cmid === `${value}#2`, 10_000);
          expect(forwarded.tid).to.equal(`${value}#2`);
          client.send([{ t: 'ACK', smid: forwarded.smid }]);
          // An unknown endpoint id is NACKed with the exact cmid.
          const nack = await client.next((e) => e.t === 'NACK' && cmidsOf(e).includes(`${value}#3`));
          expect(nack).to.be.an('object');
          expect((await client.nextOfType('SUB_OK')).eid).to.equal(`Security.${value}`);
          await node().server.publish(value, `Security.${value}`, { string: value });
          const pub = await client.nextOfType('PUB');
          expect(pub).to.include({ eid: `Security.${value}`, tid: value });
          expect(pub.msg).to.deep.equal({ string: value });
          await client.close(4000, 'done');

          expect(await storeTableNames(ctx().cluster.db.knex)).to.deep.equal(tablesBefore);
          expect(tablesBefore).to.include.members([
            'mats_socket_session',
            'mats_socket_outbox',
            'mats_outbox',
          ]);
        });
      }
    });

    describe('HELLO flood', () => {
      it(`HELLOs of one user one after the other: ${SESSION_CAP} sessions, every further one closes 1008`, async () => {
        const clients: RawClient[] = [];
        const outcomes: (string | number)[] = [];
        for (let i = 0; i < SESSION_CAP + 5; i++) {
          const c = await RawClient.connect(node().url);
          clients.push(c);
          c.send([{ t: 'HELLO', clv: 'c', an: 'a', av: '1', auth: testAuth('serialFlooder') }]);
          outcomes.push(
            await c.nextOfType('WELCOME').then(
              () => 'WELCOME',
              () => c.closed().then((x) => x.code),
            ),
          );
        }
        expect(outcomes).to.deep.equal([
          ...Array<string>(SESSION_CAP).fill('WELCOME'),
          ...Array<number>(5).fill(1008),
        ]);
        expect(await node().server.getSessionsCount({ userId: 'serialFlooder' })).to.equal(SESSION_CAP);
        await Promise.all(clients.map((c) => c.close(4000, 'done')));
      });

      it(`many concurrent HELLOs of one user: at most ${SESSION_CAP} sessions, the rest close 1008`, async () => {
        const flood = 25;
        const clients = await Promise.all(Array.from({ length: flood }, () => RawClient.connect(node().url)));
        for (const c of clients)
          c.send([{ t: 'HELLO', clv: 'c', an: 'a', av: '1', auth: testAuth('flooder') }]);
        const outcomes = await Promise.all(
          clients.map((c) =>
            c.nextOfType('WELCOME', 10_000).then(
              () => 'WELCOME',
              () => c.closed().then((x) => x.code),
            ),
          ),
        );
        const welcomed = outcomes.filter((o) => o === 'WELCOME').length;
        expect(welcomed).to.be.at.most(SESSION_CAP).and.at.least(1);
        expect(outcomes.filter((o) => o === 1008).length).to.equal(flood - welcomed);
        expect(await node().server.getSessionsCount({ userId: 'flooder' })).to.be.at.most(SESSION_CAP);
        await Promise.all(clients.map((c) => c.close(4000, 'done')));
      });
    });
  },
);

function cmidsOf(e: Envelope): string[] {
  if (typeof e.cmid === 'string') return [e.cmid];
  return Array.isArray(e.ids) ? (e.ids as string[]) : [];
}

async function eventuallyTrue(condition: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
