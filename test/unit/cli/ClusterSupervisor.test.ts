import { expect } from 'chai';
import { once } from 'node:events';
import { join } from 'node:path';
import {
  ClusterSupervisor,
  type ClusterNodeSpec,
  type ClusterSupervisorOptions,
  type NodeExit,
} from '../../../src/cli/ClusterSupervisor.ts';
import { repoRoot } from '../../helpers/childProgram.ts';

/** A node process of this test: the fake node in `mode` (test/helpers/fakeClusterNode.ts). */
function fake(index: number, mode: 'ready' | 'fail' | 'stubborn' | 'never' = 'ready'): ClusterNodeSpec {
  const nodeName = `fake-${index}`;
  return {
    index,
    nodeName,
    env: { FAKE_MODE: mode, MATSSOCKET_NODE_NAME: nodeName, PORT: `${9000 + index}` },
  };
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('ClusterSupervisor (the node processes of npm run cluster)', function () {
  this.timeout(20_000);
  const supervisors: ClusterSupervisor[] = [];

  function supervisor(
    nodes: ClusterNodeSpec[],
    options: Partial<ClusterSupervisorOptions> = {},
  ): ClusterSupervisor {
    const s = new ClusterSupervisor({
      command: process.execPath,
      args: ['--import', 'tsx', join(repoRoot, 'test', 'helpers', 'fakeClusterNode.ts')],
      cwd: repoRoot,
      env: process.env,
      nodes,
      stopGraceMs: 200,
      ...options,
    });
    supervisors.push(s);
    return s;
  }

  afterEach(async () => {
    // Whatever a test left running: SIGKILL at once, and wait until it is gone.
    for (const s of supervisors.splice(0)) {
      s.killAll();
      await s.allExited();
    }
  });

  it('starts every node, reports their ready lines and output, and stops them with SIGTERM', async () => {
    const s = supervisor([fake(1), fake(2)]);
    const lines: string[] = [];
    s.on('node:output', (o) => lines.push(`${o.nodeName} ${o.stream} ${o.line}`));
    const result = await s.start();
    if (result.status !== 'ready') throw new Error(`not ready: ${JSON.stringify(result)}`);
    expect(result.nodes.map((n) => [n.index, n.nodeName, n.urls.webSocket])).to.deep.equal([
      [1, 'fake-1', 'ws://127.0.0.1:9001/matssocket'],
      [2, 'fake-2', 'ws://127.0.0.1:9002/matssocket'],
    ]);
    const pids = result.nodes.map((n) => n.pid);
    expect(pids.every(isRunning)).to.equal(true);
    expect(lines.some((l) => l.startsWith('fake-2 stdout {') && l.includes('starting the MatsSocket node')))
      .to.be.true;

    const exits = await s.stop();
    expect(exits.map((e) => [e.nodeName, e.code, e.signal, e.expected, e.forced])).to.deep.equal([
      ['fake-1', 0, null, true, false],
      ['fake-2', 0, null, true, false],
    ]);
    expect(pids.some(isRunning)).to.equal(false);
    expect(lines.filter((l) => l.includes('"msg":"stopped"'))).to.have.length(2);
    expect(s.runningCount).to.equal(0);
  });

  it('a node that exits before it is ready: start() says which and why; the others are then stopped', async () => {
    const s = supervisor([fake(1), fake(2, 'fail')]);
    const result = await s.start();
    expect(result).to.deep.include({ status: 'failed', nodeName: 'fake-2' });
    expect(result.status === 'failed' && result.reason).to.equal(
      'exited before it was ready (code 1: matssocket: cannot listen: 127.0.0.1:9002 is already in use; set PORT (and HOST))',
    );
    const exits = await s.stop();
    expect(exits.map((e) => [e.nodeName, e.expected])).to.deep.equal([
      ['fake-1', true],
      ['fake-2', false],
    ]);
  });

  it('a node not ready within readyTimeoutMs fails the start', async () => {
    const s = supervisor([fake(1, 'never')], { readyTimeoutMs: 1000 });
    const result = await s.start();
    expect(result).to.deep.equal({
      status: 'failed',
      nodeName: 'fake-1',
      pid: result.status === 'failed' ? result.pid : -1,
      reason: 'not ready after 1000 ms',
    });
    await s.stop();
  });

  it('a node that ignores SIGTERM is killed after the grace period', async () => {
    const s = supervisor([fake(1), fake(2, 'stubborn')], { stopGraceMs: 300 });
    expect((await s.start()).status).to.equal('ready');
    const exits = await s.stop();
    expect(exits.map((e) => [e.nodeName, e.code, e.signal, e.forced])).to.deep.equal([
      ['fake-1', 0, null, false],
      ['fake-2', null, 'SIGKILL', true],
    ]);
  });

  it('a node that dies is reported as unexpected, and the others keep running', async () => {
    const s = supervisor([fake(1), fake(2)]);
    const result = await s.start();
    if (result.status !== 'ready') throw new Error('not ready');
    const died = once(s, 'node:exit') as Promise<[NodeExit]>;
    process.kill(result.nodes[0]!.pid, 'SIGKILL');
    const [exit] = await died;
    expect(exit).to.deep.include({ nodeName: 'fake-1', signal: 'SIGKILL', expected: false, forced: false });
    expect(s.runningCount).to.equal(1);
    expect(isRunning(result.nodes[1]!.pid)).to.equal(true);
    const exits = await s.stop();
    expect(exits[1]).to.deep.include({ nodeName: 'fake-2', code: 0, expected: true });
  });

  it('stop() before start(): nothing is spawned', async () => {
    const s = supervisor([fake(1)]);
    expect(await s.stop()).to.deep.equal([]);
    expect(await s.start()).to.deep.equal({ status: 'stopped' });
    expect(await s.allExited()).to.deep.equal([]);
  });
});
