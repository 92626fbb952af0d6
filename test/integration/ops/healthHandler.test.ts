import { expect } from 'chai';
import type { Knex } from 'knex';
import { createHealthHandler } from '../../../src/ops/healthHandler.ts';
import type { HealthReport } from '../../../src/ops/checkHealth.ts';
import { createDatabase } from '../../../src/store/database.ts';
import { createTestDatabase, type TestDatabase } from '../../../harness/databases.ts';
import { requireService } from '../../../harness/services.ts';
import { OutageProxy } from '../../faults/OutageProxy.ts';
import { eventually } from '../../helpers/clientKit.ts';
import { startOpsTestNode, type OpsTestNode } from './opsKit.ts';

const PROBE_TIMEOUT_MS = 300;

async function ready(node: OpsTestNode): Promise<{ status: number; report: HealthReport }> {
  const res = await fetch(`${node.httpUrl}/health/ready`);
  return { status: res.status, report: (await res.json()) as HealthReport };
}

function startHealthNode(knex: Knex): Promise<OpsTestNode> {
  return startOpsTestNode(knex, ({ server, store, transport }) =>
    createHealthHandler({ server, store, transport, probeTimeoutMs: PROBE_TIMEOUT_MS }),
  );
}

describe('createHealthHandler: liveness and readiness [in-memory broker + SQLite]', function () {
  this.timeout(20_000);
  let db: TestDatabase | undefined;
  let node: OpsTestNode | undefined;
  const n = (): OpsTestNode => node!;

  before(async () => {
    db = await createTestDatabase('sqlite');
    node = await startHealthNode(db.knex);
  });
  after(async () => {
    await node?.stop();
    await db?.drop();
  });

  it('live: 200 with the node; ready and /health: 200 with the store and the broker UP; HEAD too; POST 405', async () => {
    const live = await fetch(`${n().httpUrl}/health/live`);
    expect(live.status).to.equal(200);
    expect(await live.json()).to.deep.equal({ status: 'UP', node: n().server.nodeName });
    for (const path of ['/health/ready', '/health']) {
      const res = await fetch(`${n().httpUrl}${path}`);
      expect(res.status, path).to.equal(200);
      const report = (await res.json()) as HealthReport;
      expect(report).to.deep.include({ status: 'UP', node: n().server.nodeName, down: [] });
      expect(report.store.status).to.equal('UP');
      expect(report.broker).to.deep.equal({ status: 'UP', state: 'connected' });
    }
    expect((await fetch(`${n().httpUrl}/health/ready`, { method: 'HEAD' })).status).to.equal(200);
    const post = await fetch(`${n().httpUrl}/health/live`, { method: 'POST' });
    expect(post.status).to.equal(405);
    expect(post.headers.get('allow')).to.equal('GET, HEAD');
    expect((await fetch(`${n().httpUrl}/health/other`)).status).to.equal(404);
  });

  it('the broker down: ready 503 naming the broker while live stays 200; the broker back: 200', async () => {
    n().broker.setAvailable(false);
    try {
      n().broker.dropConnections();
      const down = await eventually(
        async () => {
          const r = await ready(n());
          return r.status === 503 ? r : undefined;
        },
        { what: 'readiness 503' },
      );
      expect(down.report).to.deep.include({ status: 'DOWN', down: ['broker'] });
      expect(down.report.broker.status).to.equal('DOWN');
      expect(down.report.store.status).to.equal('UP');
      expect((await fetch(`${n().httpUrl}/health/live`)).status).to.equal(200);
    } finally {
      n().broker.setAvailable(true);
    }
    await eventually(async () => (await ready(n())).status === 200, {
      what: 'readiness 200 again',
      timeoutMs: 5000,
    });
  });

  it('the store not answering (its one SQLite connection held): ready 503 naming the store; released: 200', async () => {
    const held = await n().knex.transaction();
    try {
      const { status, report } = await ready(n());
      expect(status).to.equal(503);
      expect(report).to.deep.include({ status: 'DOWN', down: ['store'] });
      expect(report.store).to.deep.equal({
        status: 'DOWN',
        error: `no answer within ${PROBE_TIMEOUT_MS} ms`,
      });
    } finally {
      await held.rollback();
    }
    expect((await ready(n())).status).to.equal(200);
  });
});

describe('createHealthHandler: readiness while the database is unreachable [MariaDB through a proxy]', function () {
  this.timeout(30_000);
  let db: TestDatabase | undefined;
  let proxy: OutageProxy | undefined;
  let knex: Knex | undefined;
  let node: OpsTestNode | undefined;

  before(async function () {
    await requireService(this, 'mariadb');
    db = await createTestDatabase('mysql');
    const direct = new URL(db.url);
    proxy = await OutageProxy.start({ host: direct.hostname, port: Number(direct.port || 3306) });
    const viaProxy = new URL(db.url);
    viaProxy.port = String(proxy.port);
    knex = createDatabase(viaProxy.toString(), { poolMax: 4, connectTimeoutMs: 1000 });
    node = await startHealthNode(knex);
  });
  after(async () => {
    await node?.stop();
    await knex?.destroy();
    await proxy?.close();
    await db?.drop();
  });

  it('ready 503 naming the store while the proxy refuses connections; 200 once it accepts again', async () => {
    expect((await ready(node!)).status).to.equal(200);
    const outage = proxy!.outage(3000);
    try {
      const down = await eventually(
        async () => {
          const r = await ready(node!);
          return r.status === 503 ? r : undefined;
        },
        { what: 'readiness 503', timeoutMs: 2500 },
      );
      expect(down.report.down).to.deep.equal(['store']);
      expect(down.report.store.status).to.equal('DOWN');
    } finally {
      await outage;
    }
    await eventually(async () => (await ready(node!)).status === 200, {
      what: 'readiness 200 again',
      timeoutMs: 10_000,
    });
  });
});
