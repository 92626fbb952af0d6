import { resolve } from 'node:path';
import { ChildProgram, repoRoot } from '../helpers/childProgram.ts';
import type { ChaosProgramConfig } from './chaosEndpoints.ts';

/**
 * One process of the soak (a node or the backend) that the schedule kills, restarts under the same name and
 * config, and pauses. Each incarnation is a {@link ChildProgram} in its own process group.
 */
export class ChaosProcess {
  readonly name: string;
  readonly #program: string;
  readonly #config: ChaosProgramConfig;
  #current: ChildProgram | undefined;
  /** stderr tails of earlier incarnations (killed ones), for failure messages. */
  readonly #history: string[] = [];
  url = '';
  starts = 0;

  constructor(program: 'chaosNodeProgram.ts' | 'chaosBackendProgram.ts', config: ChaosProgramConfig) {
    this.name = config.nodeName;
    this.#program = resolve(repoRoot, 'test', 'chaos', program);
    this.#config = config;
  }

  /** Starts an incarnation; resolves when it printed READY (bounded). */
  async start(timeoutMs = 40_000): Promise<void> {
    const child = new ChildProgram(process.execPath, ['--import', 'tsx', this.#program], {
      CHAOS_CONFIG: JSON.stringify(this.#config),
    });
    this.#current = child;
    this.starts++;
    try {
      const line = await child.waitForLine(/^READY \S+/, timeoutMs);
      this.url = line.split(' ')[1]!;
    } catch (err) {
      await child.kill();
      throw new Error(`${this.name} did not start`, { cause: err });
    }
  }

  /** `kill -9`, waits until the process is gone. */
  async kill9(): Promise<void> {
    const child = this.#current;
    if (!child) return;
    this.#history.push(...child.stderr.slice(-5));
    await child.kill();
  }

  /** SIGSTOP for `ms`, then SIGCONT. */
  async pause(ms: number): Promise<void> {
    this.#current?.signal('SIGSTOP');
    await new Promise((r) => setTimeout(r, ms));
    this.#current?.signal('SIGCONT');
  }

  /** SIGTERM (graceful), SIGKILL if it is still there after `timeoutMs`. */
  async stop(timeoutMs = 10_000): Promise<void> {
    const child = this.#current;
    if (!child) return;
    child.signal('SIGCONT');
    child.signal('SIGTERM');
    try {
      await child.waitForExit(timeoutMs);
    } catch {
      await child.kill();
    }
  }

  /** The last lines of stderr (all incarnations), for failure messages. */
  stderrTail(lines = 10): string[] {
    return [...this.#history, ...(this.#current?.stderr ?? [])].slice(-lines);
  }
}
