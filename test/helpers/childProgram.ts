import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (where package.json is). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** How a child program ended. */
export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * A program of this repository run as a child process (`npm run <script>` or a command), with its stdout and stderr
 * collected as lines and helpers to wait for a line or the exit. {@link kill} in an `after` hook makes sure nothing
 * outlives the test.
 */
export class ChildProgram {
  readonly child: ChildProcess;
  readonly stdout: string[] = [];
  readonly stderr: string[] = [];
  /** The direct child's exit. Other processes of its group (npm's children) may still run and write. */
  readonly exited: Promise<ChildExit>;
  /** Both output pipes closed: every process that held them (the whole program) is gone. */
  readonly outputEnded: Promise<void>;
  #waiters: (() => void)[] = [];
  #exit: ChildExit | undefined;
  #ended = false;

  constructor(command: string, args: readonly string[], env: Record<string, string>) {
    this.child = spawn(command, args, {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Own process group: kill() reaches npm, its shell, tsx and node alike.
      detached: true,
    });
    this.outputEnded = Promise.all([
      this.#collect(this.child.stdout!, this.stdout),
      this.#collect(this.child.stderr!, this.stderr),
    ]).then(() => {
      this.#ended = true;
      this.#wake();
    });
    this.exited = once(this.child, 'exit').then(([code, signal]) => {
      this.#exit = { code: code as number | null, signal: signal as NodeJS.Signals | null };
      this.#wake();
      return this.#exit;
    });
  }

  /** `npm run -s <script>` (silent: stdout carries only the program's own output). */
  static npmRun(script: string, env: Record<string, string>): ChildProgram {
    return new ChildProgram('npm', ['run', '-s', script], env);
  }

  #collect(stream: NodeJS.ReadableStream, lines: string[]): Promise<void> {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      lines.push(...parts);
      this.#wake();
    });
    return new Promise((resolve) => {
      stream.on('close', () => {
        if (partial.length > 0) lines.push(partial);
        partial = '';
        resolve();
      });
    });
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /**
   * Waits for a stdout line matching `pattern`; rejects on timeout or when the output has ended, with the output in
   * the message.
   */
  async waitForLine(pattern: RegExp, timeoutMs = 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.stdout.find((l) => pattern.test(l));
      if (line !== undefined) return line;
      const left = deadline - Date.now();
      if (this.#exit || left <= 0) {
        const why = this.#exit
          ? `exited with ${JSON.stringify(this.#exit)}`
          : `timed out after ${timeoutMs} ms`;
        throw new Error(
          `no stdout line matching ${pattern} (${why})\nstdout:\n${this.stdout.join('\n')}\nstderr (tail):\n${this.stderr.slice(-20).join('\n')}`,
        );
      }
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /**
   * Waits until the program is gone (the direct child exited and every process holding its output closed it),
   * bounded by `timeoutMs`. @returns the direct child's exit.
   */
  async waitForExit(timeoutMs = 30_000): Promise<ChildExit> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(`still running after ${timeoutMs} ms; stderr:\n${this.stderr.slice(-20).join('\n')}`),
          ),
        timeoutMs,
      );
    });
    try {
      await Promise.race([Promise.all([this.exited, this.outputEnded]), timeout]);
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends a signal to the whole process group. */
  signal(signal: NodeJS.Signals): void {
    if ((this.#exit && this.#ended) || this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, signal);
    } catch {
      // Already gone.
    }
  }

  /** Kills the process group (SIGKILL) unless the program is gone, and waits until it is. */
  async kill(): Promise<void> {
    if (this.#exit && this.#ended) return;
    this.signal('SIGKILL');
    await Promise.all([this.exited, this.outputEnded]);
  }
}
