import { expect } from 'chai';
import { createOpsHandler } from '../../../src/ops/opsHandler.ts';
import { createTestDatabase, type TestDatabase } from '../../../harness/databases.ts';
import { testAuth } from '../../../harness/startTestCluster.ts';
import { RawClient } from '../../helpers/rawClient.ts';
import { NOOP_TERMINATOR, startOpsTestNode, type OpsTestNode } from './opsKit.ts';

const ADMIN_TOKEN = 'the-admin-token-of-this-test-4567';

describe('admin API introspection routes [in-memory broker + SQLite]', function () {
  this.timeout(20_000);
  let db: TestDatabase | undefined;
  let node: OpsTestNode | undefined;
  const get = (path: string, token = ADMIN_TOKEN) =>
    fetch(`${node!.httpUrl}${path}`, { headers: { authorization: `Bearer ${token}` } });

  before(async () => {
    db = await createTestDatabase('sqlite');
    node = await startOpsTestNode(db.knex, ({ server, store, transport }) =>
      createOpsHandler({ server, store, transport, adminToken: ADMIN_TOKEN }),
    );
  });
  after(async () => {
    await node?.stop();
    await db?.drop();
  });

  it('GET /api/introspection: node, implementation, endpoints, live sessions without their envelopes', async () => {
    const client = await RawClient.connect(node!.webSocketUrl, {
      headers: { 'x-forwarded-for': '198.51.100.2' },
    });
    const sid = (await client.hello(testAuth('admin-viewed'), { extra: [{ t: 'SUB', eid: 'news' }] }))
      .sid as string;
    await client.nextOfType('SUB_OK');
    try {
      const response = await get('/api/introspection');
      expect(response.status).to.equal(200);
      const body = (await response.json()) as {
        node: string;
        implementation: { name: string; version: string };
        endpoints: { endpointId: string; kind: string }[];
        liveSessionsTotal: number;
        liveSessions: Record<string, unknown>[];
      };
      expect(body.node).to.equal(node!.server.nodeName);
      expect(body.implementation).to.deep.equal(node!.server.implementation);
      expect(body.endpoints).to.deep.include({
        endpointId: NOOP_TERMINATOR,
        kind: 'terminator',
        hasReplyAdapter: false,
      });
      expect(body.liveSessionsTotal).to.equal(1);
      const [session] = body.liveSessions;
      expect(session).to.include({
        sessionId: sid,
        userId: 'admin-viewed',
        originatingAddress: '198.51.100.2',
      });
      expect(session).to.have.property('topics').that.deep.equals(['news']);
      expect(session).to.not.have.property('lastEnvelopes');
      expect(session!.envelopesKept).to.be.at.least(3);

      const one = await get(`/api/live-sessions/${sid}`);
      expect(one.status).to.equal(200);
      const detail = (await one.json()) as { sessionId: string; lastEnvelopes: { t: string }[] };
      expect(detail.sessionId).to.equal(sid);
      expect(detail.lastEnvelopes.map((e) => e.t)).to.include.members(['HELLO', 'WELCOME', 'SUB', 'SUB_OK']);
      expect((await get('/api/live-sessions/NoSuchSession0001')).status).to.equal(404);
      expect((await get('/api/introspection', 'not-the-admin-token-at-all-0000')).status).to.equal(401);
    } finally {
      await client.close(4000, 'done');
    }
  });
});
