import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/** How a private service goes down in {@link PrivateServiceProcess.restart}: its own shutdown, or `kill -9`. */
export type RestartMode = 'graceful' | 'kill';

/** What a subclass runs: the server program, its arguments and its whole environment. */
export interface ServiceCommand {
  file: string;
  args: string[];
  env: Record<string, string>;
}

/** Bounds on a private service's life-cycle steps, ms. */
export interface PrivateServiceTimings {
  /** From spawn to ready (the readiness probe passes). @default 60000 */
  bootTimeoutMs?: number;
  /** From SIGTERM to gone; past it the service is killed and the stop fails. @default 30000 */
  stopTimeoutMs?: number;
}

const OUTPUT_LINES = 200;

/** Every process group started here, so that an exiting test process leaves no server behind. */
const liveGroups = new Set<number>();
process.on('exit', () => {
  for (const pgid of liveGroups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
});

/** The first existing `name` in `preferred` directories, then on PATH, then in the system sbin directories. */
export function findProgram(name: string, preferred: readonly string[] = []): string | undefined {
  const dirs = [
    ...preferred,
    ...(process.env.PATH ?? '').split(delimiter),
    '/usr/local/sbin',
    '/usr/sbin',
    '/sbin',
  ];
  return dirs
    .filter((d) => d.length > 0)
    .map((d) => join(d, name))
    .find((p) => existsSync(p));
}

/** A TCP port on 127.0.0.1 that was free a moment ago (the OS's pick). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
export function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port, timeout: 1000 });
    const done = (open: boolean): void => {
      socket.destroy();
      resolve(open);
    };
    socket.once('connect', () => done(true));
    socket.once('timeout', () => done(false));
    socket.once('error', () => done(false));
  });
}

/** The environment of this process without the variables whose prefix is listed (a private server's own). */
export function envWithout(prefixes: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !prefixes.some((p) => k.startsWith(p))) env[k] = v;
  }
  return env;
}

/**
 * A database or broker server run by a test as a child process of its own, in a fresh directory under the OS temp
 * directory, on ports of its own: tests may restart it, `kill -9` it or change its settings, which they must never
 * do to the machine's shared services. Each (re)start is bounded and timed ({@link bootMs}); a failed one throws an
 * error naming the service, its port and the tail of its output and logs.
 */
export abstract class PrivateServiceProcess {
  /** E.g. `private RabbitMQ msrt1a2b@localhost (127.0.0.1:40123)`. */
  abstract readonly label: string;
  /** The directory holding everything of this instance; removed by {@link close}. */
  readonly dir: string;
  /** How long each start took until ready, ms. */
  readonly bootMs: number[] = [];
  protected readonly timings: Required<PrivateServiceTimings>;
  readonly #output: string[] = [];
  #child: ChildProcess | undefined;
  #gone: Promise<void> = Promise.resolve();
  #prepared = false;
  #closed = false;

  protected constructor(kind: string, timings: PrivateServiceTimings = {}) {
    this.dir = mkdtempSync(join(tmpdir(), `matssocket-private-${kind}-`));
    this.timings = { bootTimeoutMs: 60_000, stopTimeoutMs: 30_000, ...timings };
  }

  /** One-time set-up before the first start (e.g. a data directory). */
  protected abstract prepare(): Promise<void>;
  protected abstract command(): ServiceCommand;
  /** Whether the service serves (called every 100 ms during a start). */
  protected abstract ready(): Promise<boolean>;
  /** Log files whose tails go into error messages. */
  protected abstract logFiles(): string[];
  /** The pid that SIGTERM stops gracefully; by default the spawned process. */
  protected gracefulPid(child: ChildProcess): number | undefined {
    return child.pid;
  }

  get running(): boolean {
    return this.#child !== undefined;
  }

  /** Starts the service; resolves when it serves. Throws, with the output tail, if it exits or times out first. */
  async start(): Promise<void> {
    if (this.#closed) throw new Error(`${this.label} is closed`);
    if (this.#child) throw new Error(`${this.label} is already running`);
    if (!this.#prepared) {
      await this.prepare();
      this.#prepared = true;
    }
    const { file, args, env } = this.command();
    const started = performance.now();
    const child = spawn(file, args, {
      cwd: this.dir,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    this.#child = child;
    let exit: string | undefined;
    const exited = new Promise<void>((resolve) =>
      child.once('exit', (code, signal) => {
        exit = signal ? `killed by ${signal}` : `exited with code ${code}`;
        resolve();
      }),
    );
    child.once('error', (err) => (exit = `could not be spawned: ${err.message}`));
    const closed = [child.stdout, child.stderr].map((s) => {
      s.setEncoding('utf8').on('data', (d: string) => this.#keep(d));
      return new Promise<void>((resolve) => s.once('close', resolve));
    });
    // Gone: the spawned process exited and every process of its group that held its output closed it.
    this.#gone = Promise.all([exited, ...closed]).then(() => {
      if (child.pid !== undefined) liveGroups.delete(child.pid);
      if (this.#child === child) this.#child = undefined;
    });
    if (child.pid !== undefined) liveGroups.add(child.pid);
    const deadline = started + this.timings.bootTimeoutMs;
    for (;;) {
      if (exit !== undefined) throw this.#failure(`${exit} before it was ready`);
      if (await this.ready().catch(() => false)) break;
      if (performance.now() > deadline) {
        await this.kill();
        throw this.#failure(`was not ready within ${this.timings.bootTimeoutMs} ms`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    this.bootMs.push(Math.round(performance.now() - started));
  }

  /** Graceful stop (SIGTERM, the server's own shutdown); past the stop timeout it is killed and this throws. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    const pid = this.gracefulPid(child);
    if (pid !== undefined) signal(pid, 'SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const inTime = await Promise.race([
      this.#gone.then(() => true),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), this.timings.stopTimeoutMs))),
    ]);
    clearTimeout(timer);
    if (!inTime) {
      await this.kill();
      throw this.#failure(`did not stop within ${this.timings.stopTimeoutMs} ms of SIGTERM (killed)`);
    }
  }

  /** `kill -9` of every process of the service; resolves when they are gone. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    if (child.pid !== undefined) signal(-child.pid, 'SIGKILL');
    await this.#gone;
  }

  /** Stops (`graceful`) or kills the service, leaves it down for `downMs`, then starts it again. */
  async restart(mode: RestartMode, downMs = 0): Promise<void> {
    if (mode === 'graceful') await this.stop();
    else await this.kill();
    // How long the service stays down (a schedule's figure), not a wait for state.
    if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
    await this.start();
  }

  /** Kills the service and removes its directory. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** The last lines of the service's output and of its log files. */
  outputTail(lines = 15): string {
    const logs = this.logFiles()
      .filter((f) => existsSync(f))
      .map((f) => `${f}:\n${readFileSync(f, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')}`);
    return [`output:\n${this.#output.slice(-lines).join('\n')}`, ...logs].join('\n');
  }

  #keep(chunk: string): void {
    this.#output.push(...chunk.split('\n').filter((l) => l.trim().length > 0));
    if (this.#output.length > OUTPUT_LINES) this.#output.splice(0, this.#output.length - OUTPUT_LINES);
  }

  #failure(what: string): Error {
    return new Error(`${this.label} ${what}\n${this.outputTail()}`);
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}
