import { expect } from 'chai';
import { dummyAuthValue } from '../../../src/cli/compat/DummyAuth.ts';
import { createDatabase } from '../../../src/store/database.ts';
import { failureCount, keepForInspection, runId } from '../../../harness/runState.ts';
import { requireService, serviceUrls } from '../../../harness/services.ts';
import { createTestBroker, type TestBroker } from '../../../harness/transports.ts';
import { ChildProgram } from '../../helpers/childProgram.ts';
import { freePorts, useClientPool } from '../../helpers/clientKit.ts';

/** A row of the URL table the command prints when every node is ready. */
interface TableRow {
  nodeName: string;
  pid: number;
  demo: string;
  admin: string;
  webSocket: string;
  metrics: string;
}

const TABLE_ROW = /^(cluster-\d+)\s+(\d+)\s+(http\S+)\s+(http\S+)\s+(ws\S+)\s+(http\S+)$/;

/**
 * `node --import tsx src/cli/cluster.ts`: one process, so a signal to its group is exactly a Ctrl-C. Its queues
 * and exchange carry the suite's prefix (deleted with the suite).
 */
function cluster(args: readonly string[], queuePrefix: string): ChildProgram {
  return new ChildProgram(process.execPath, ['--import', 'tsx', 'src/cli/cluster.ts', ...args], {
    MATSSOCKET_AMQP_URL: serviceUrls.rabbitmq,
    MATSSOCKET_QUEUE_PREFIX: queuePrefix,
    DEMO_TICKER_INTERVAL_MS: '0',
    LOG_LEVEL: 'info',
  });
}

/** Waits for the URL table and returns its rows. */
async function urlTable(program: ChildProgram): Promise<TableRow[]> {
  await program.waitForLine(/^Ctrl-C stops every node\.$/, 90_000);
  return program.stdout.flatMap((line) => {
    const m = TABLE_ROW.exec(line);
    if (!m) return [];
    const [, nodeName, pid, demo, admin, webSocket, metrics] = m;
    return [
      {
        nodeName: nodeName!,
        pid: Number(pid),
        demo: demo!,
        admin: admin!,
        webSocket: webSocket!,
        metrics: metrics!,
      },
    ];
  });
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function readiness(
  row: TableRow,
): Promise<{ status: number; body: { status?: string; node?: string } }> {
  const res = await fetch(new URL('/health/ready', row.demo));
  return { status: res.status, body: (await res.json()) as { status?: string; node?: string } };
}

describe('npm run cluster (RabbitMQ + MariaDB)', function () {
  this.timeout(150_000);
  const pool = useClientPool();
  const database = `ms_${runId}_cluster`;
  const databaseUrl = `${serviceUrls.mariadb}/${database}`;
  const failuresAtStart = failureCount();
  const programs: ChildProgram[] = [];
  let broker: TestBroker | undefined;
  const start = (...args: string[]): ChildProgram => {
    const p = cluster(
      ['--nodes', '2', '--base-port', '0', '--database-url', databaseUrl, ...args],
      broker!.prefix,
    );
    programs.push(p);
    return p;
  };

  before(async function () {
    await requireService(this, 'rabbitmq');
    await requireService(this, 'mariadb');
    broker = await createTestBroker('rabbitmq');
  });

  afterEach(async () => {
    await Promise.all(programs.splice(0).map((p) => p.kill()));
  });

  after(async function () {
    this.timeout(60_000);
    await broker?.close();
    if (keepForInspection(databaseUrl, failuresAtStart)) return;
    const admin = createDatabase(serviceUrls.mariadb, { poolMax: 1 });
    try {
      await admin.raw(`DROP DATABASE IF EXISTS \`${database}\``);
    } finally {
      await admin.destroy();
    }
  });

  it('--nodes 2: creates and migrates the database, serves on both nodes, and Ctrl-C stops every process (exit 0)', async () => {
    const program = start();
    const rows = await urlTable(program);
    expect(rows.map((r) => r.nodeName)).to.deep.equal(['cluster-1', 'cluster-2']);
    expect(program.stdout.some((l) => l.includes('"msg":"created the database"'))).to.equal(true);
    expect(program.stdout.some((l) => l.startsWith('cluster-1 | {'))).to.equal(true);
    expect(program.stdout.some((l) => l.startsWith('cluster-2 | {'))).to.equal(true);
    const adminPage = /^Admin page: {2}http:\/\/127\.0\.0\.1:\d+\/admin#token=[\w-]{40,}$/;
    expect(program.stdout.some((l) => adminPage.test(l))).to.equal(true);

    const client = pool.create(rows[1]!.webSocket, dummyAuthValue('cluster-test'));
    const reply = await client.request('Demo.echo', `cluster_${runId}`, { text: 'hello cluster' });
    expect(reply.data).to.deep.include({ text: 'hello cluster', upperCase: 'HELLO CLUSTER' });
    expect(['cluster-1', 'cluster-2']).to.include((reply.data as { node: string }).node);
    await pool.closeAll();

    for (const row of rows) {
      expect(await readiness(row)).to.deep.include({ status: 200 });
      expect((await readiness(row)).body).to.deep.include({ status: 'UP', node: row.nodeName });
    }

    program.signal('SIGINT');
    expect(await program.waitForExit(40_000)).to.deep.equal({ code: 0, signal: null });
    expect(rows.filter((r) => isRunning(r.pid)).map((r) => r.nodeName)).to.deep.equal([]);
    expect(program.stdout.filter((l) => /^cluster-\d \| .*"msg":"stopped"/.test(l))).to.have.length(2);
  });

  it('--exit-on-failure: a node killed with SIGKILL is reported, the others are stopped, exit 1', async () => {
    const program = start('--exit-on-failure');
    const rows = await urlTable(program);
    process.kill(rows[0]!.pid, 'SIGKILL');
    await program.waitForLine(/NODE DIED: cluster-1 \(pid \d+\) exited unexpectedly \(signal SIGKILL\)/);
    expect(await program.waitForExit(40_000)).to.deep.equal({ code: 1, signal: null });
    expect(rows.filter((r) => isRunning(r.pid)).map((r) => r.nodeName)).to.deep.equal([]);
  });
});

describe('npm run cluster without its servers', function () {
  this.timeout(60_000);

  it('RabbitMQ not reachable: one line naming the URL, the flag and how to start it; exit 1', async () => {
    const [port] = await freePorts(1);
    const run = new ChildProgram(
      'npm',
      ['run', '-s', 'cluster', '--', '--amqp-url', `amqp://guest:guest@127.0.0.1:${port}`],
      {},
    );
    try {
      expect(await run.waitForExit()).to.deep.include({ code: 1 });
      expect(run.stderr.join('\n')).to.contain(
        `cluster: cannot reach RabbitMQ at 127.0.0.1:${port}: connection refused (ECONNREFUSED); start it there, or fix --amqp-url (or MATSSOCKET_AMQP_URL), or run 'docker compose up -d --wait'`,
      );
    } finally {
      await run.kill();
    }
  });
});
