import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { askCounters } from '../../harness/nodeCounters.ts';
import { trackProcess, untrackProcess } from '../pipeline/cpu.ts';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

/**
 * A bench program in a child process (`node --import tsx <file> '<config JSON>'`) whose CPU the phases charge to
 * its own label. The program prints `READY <detail>` when it serves and answers counter requests over IPC
 * (`harness/nodeCounters.ts`); SIGTERM stops it.
 */
export class BenchProcess {
  readonly child: ChildProcess;
  readonly output: string[] = [];
  readonly exited: Promise<void>;
  /** What the program printed after `READY` (e.g. its URL). */
  ready = '';

  private constructor(file: URL, config: unknown) {
    this.child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(file), JSON.stringify(config)], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => this.output.push(d));
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => this.output.push(d));
    this.exited = once(this.child, 'exit').then(() => undefined);
    this.child.on('error', () => undefined);
    this.child.channel?.unref();
  }

  /** Spawns `file` with `config`, resolves when it printed READY (bounded), its CPU charged to `label`. */
  static async start(label: string, file: URL, config: unknown, timeoutMs = 30_000): Promise<BenchProcess> {
    const program = new BenchProcess(file, config);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = /READY ?(\S*)/.exec(program.output.join(''));
      if (m) {
        program.ready = m[1]!;
        trackProcess(label, program.child.pid!);
        return program;
      }
      if (program.child.exitCode !== null || Date.now() > deadline) {
        program.child.kill('SIGKILL');
        throw new Error(`${label} did not start: ${program.output.join('')}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** The program's counters (`answerCounterRequests` in it). */
  counters(): Promise<Record<string, number>> {
    return askCounters<Record<string, number>>(this.child);
  }

  /** SIGTERM, then SIGKILL after `timeoutMs`; resolves at the exit. Idempotent. */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (this.child.pid !== undefined) untrackProcess(this.child.pid);
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }
}
