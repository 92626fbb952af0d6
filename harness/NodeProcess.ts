import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FaultNodeConfig } from './faultNodeProgram.ts';
import { askCounters, type NodeCounters } from './nodeCounters.ts';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '..');

/** One node in a child process (`node --import tsx harness/faultNodeProgram.ts`), so it can be killed for real. */
export class NodeProcess {
  readonly child: ChildProcess;
  readonly output: string[] = [];
  readonly exited: Promise<void>;
  url = '';

  private constructor(config: FaultNodeConfig, execArgv: readonly string[]) {
    this.child = spawn(
      process.execPath,
      [...execArgv, '--import', 'tsx', resolve(here, 'faultNodeProgram.ts')],
      {
        cwd: repoRoot,
        env: { ...process.env, FAULT_NODE_CONFIG: JSON.stringify(config) },
        // The IPC channel carries the bench's requests for the node's counters (`counters()`).
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      },
    );
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => this.output.push(d));
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => this.output.push(d));
    this.exited = once(this.child, 'exit').then(() => undefined);
    // A node killed on purpose closes the channel; nothing here must keep the parent alive or throw for it.
    this.child.on('error', () => undefined);
    this.child.channel?.unref();
  }

  /**
   * Spawns the node and resolves when it listens (bounded). `execArgv`: node's own flags for the child, e.g.
   * `--cpu-prof` when a benchmark profiles its nodes.
   */
  static async start(
    config: FaultNodeConfig,
    timeoutMs = 30_000,
    execArgv: readonly string[] = [],
  ): Promise<NodeProcess> {
    const node = new NodeProcess(config, execArgv);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = /READY (\S+)/.exec(node.output.join(''));
      if (m) {
        node.url = m[1]!;
        return node;
      }
      if (node.child.exitCode !== null || Date.now() > deadline) {
        node.kill('SIGKILL');
        throw new Error(`node ${config.nodeName} did not start: ${node.output.join('')}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** The node's database statements and broker publishes so far (`nodeCounters.ts`); bounded wait. */
  counters(timeoutMs = 5000): Promise<NodeCounters> {
    return askCounters<NodeCounters>(this.child, timeoutMs);
  }

  /** Sends a signal if still running; waits for the exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.kill(signal);
    const timer = setTimeout(() => this.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }

  kill(signal: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }
}
