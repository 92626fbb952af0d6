import { expect } from 'chai';
import net from 'node:net';
import { dummyAuthValue } from '../../../src/cli/compat/DummyAuth.ts';
import { ChildProgram } from '../../helpers/childProgram.ts';
import { freePorts, nextEvent, useClientPool } from '../../helpers/clientKit.ts';

const READY = /^MATSSOCKET_COMPAT_READY MATS_SOCKET_URLS=/;

/** `node --import tsx src/cli/compatServer.ts`: one process, so a signal reaches exactly the server. */
function directCompatServer(env: Record<string, string>): ChildProgram {
  return new ChildProgram(process.execPath, ['--import', 'tsx', 'src/cli/compatServer.ts'], env);
}

describe('npm run compat-server (docs/compat-test-server.md 1)', function () {
  this.timeout(60_000);
  const pool = useClientPool();
  const programs: ChildProgram[] = [];
  const track = (p: ChildProgram): ChildProgram => {
    programs.push(p);
    return p;
  };
  afterEach(async () => {
    await Promise.all(programs.splice(0).map((p) => p.kill()));
  });

  it('prints exactly the readiness line on stdout, serves every node, and GET /shutdown stops it with exit 0', async () => {
    const ports = await freePorts(3);
    const program = track(
      ChildProgram.npmRun('compat-server', { MATSSOCKET_PORTS: ports.join(','), LOG_LEVEL: 'info' }),
    );
    const line = await program.waitForLine(READY);
    const urls = ports.map((p) => `ws://127.0.0.1:${p}/matssocket`);
    expect(line).to.equal(`MATSSOCKET_COMPAT_READY MATS_SOCKET_URLS=${urls.join(',')}`);

    const clients = urls.map((url) => pool.create(url, dummyAuthValue('standard')));
    const replies = await Promise.all(
      clients.map((c, i) =>
        c.request('Test.single', `p${i}`, { string: 'x', number: i, requestTimestamp: i }),
      ),
    );
    expect(replies.map((r) => r.data)).to.deep.equal(
      [0, 1, 2].map((i) => ({ number1: 'x:FromSingle'.length, number2: i * 2, requestTimestamp: i })),
    );

    const lost = nextEvent(clients[0]!, 'connection', (e) => e.type === 'LOST_CONNECTION', 10_000);
    const res = await fetch(`http://127.0.0.1:${ports[1]}/shutdown`);
    expect(res.status).to.equal(200);
    expect(await res.text()).to.equal('Shutting down');
    const event = await lost;
    expect(event.type === 'LOST_CONNECTION' && event.code).to.equal(1012);
    expect(await program.waitForExit()).to.deep.equal({ code: 0, signal: null });
    expect(program.stdout.filter((l) => l.trim().length > 0)).to.deep.equal([line]);
    // The log (stderr, pino JSON) says what it did.
    expect(program.stderr.some((l) => l.includes('all nodes stopped'))).to.equal(true);
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal} stops gracefully with exit 0`, async () => {
      const [port] = await freePorts(1);
      const program = track(directCompatServer({ MATSSOCKET_PORTS: String(port) }));
      await program.waitForLine(READY);
      const c = pool.create(`ws://127.0.0.1:${port}/matssocket`, dummyAuthValue('standard'));
      await c.send('Test.ignoreInIncomingHandler', 'start', {});
      const lost = nextEvent(c, 'connection', (e) => e.type === 'LOST_CONNECTION', 10_000);
      program.signal(signal);
      const event = await lost;
      expect(event.type === 'LOST_CONNECTION' && event.code).to.equal(1012);
      expect(await program.waitForExit()).to.deep.equal({ code: 0, signal: null });
    });
  }

  it('a busy port: exits non-zero with a clear message (and does not try another port)', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    try {
      const busy = (blocker.address() as net.AddressInfo).port;
      const [free] = await freePorts(1);
      const program = track(directCompatServer({ MATSSOCKET_PORTS: `${free},${busy}` }));
      const exit = await program.waitForExit();
      expect(exit.code).to.equal(1);
      expect(program.stderr.join('\n')).to.contain(`127.0.0.1:${busy} is already in use`);
      expect(program.stdout.some((l) => READY.test(l))).to.equal(false);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  it('an invalid variable: exits 1 naming it', async () => {
    const program = track(directCompatServer({ MATSSOCKET_PORTS: '8080,x' }));
    expect((await program.waitForExit()).code).to.equal(1);
    expect(program.stderr.join('\n')).to.contain('MATSSOCKET_PORTS');
  });
});
