import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AbuseNodeConfig, AbuseRequest, AbuseResponse, NodeMemory } from './abuseNodeProgram.ts';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '..', '..');

/** Resident set figures of a process from `/proc/<pid>/status`, bytes. */
export interface ProcRss {
  /** VmRSS: resident now. */
  rss: number;
  /** VmHWM: the peak resident size since start or the last {@link AbuseNode.resetPeak}. */
  peak: number;
}

type Distribute<T> = T extends unknown ? Omit<T, 'id'> : never;

/**
 * The abuse suite's node in a child process (`node --expose-gc --import tsx abuseNodeProgram.ts`), so its memory
 * is its own: RSS from `/proc`, a forced GC and `process.memoryUsage()` over IPC, and the kernel's peak-RSS mark
 * (reset through `/proc/<pid>/clear_refs`), which catches a transient spike no sampling would see.
 */
export class AbuseNode {
  readonly child: ChildProcess;
  readonly output: string[] = [];
  readonly exited: Promise<void>;
  readonly config: AbuseNodeConfig;
  url = '';
  #nextId = 0;
  readonly #waiting = new Map<number, (r: AbuseResponse) => void>();

  private constructor(config: AbuseNodeConfig) {
    this.config = config;
    this.child = spawn(
      process.execPath,
      [
        // e.g. ABUSE_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' to profile the node under an attack
        ...(process.env.ABUSE_NODE_ARGS ?? '').split(' ').filter(Boolean),
        '--expose-gc',
        '--import',
        'tsx',
        resolve(here, 'abuseNodeProgram.ts'),
      ],
      {
        cwd: repoRoot,
        env: { ...process.env, ABUSE_NODE_CONFIG: JSON.stringify(config) },
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      },
    );
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => this.output.push(d));
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => this.output.push(d));
    this.child.on('message', (m: AbuseResponse) => {
      this.#waiting.get(m.id)?.(m);
      this.#waiting.delete(m.id);
    });
    this.exited = once(this.child, 'exit').then(() => undefined);
  }

  /** Spawns the node and resolves when it listens (bounded). */
  static async start(config: AbuseNodeConfig, timeoutMs = 30_000): Promise<AbuseNode> {
    const node = new AbuseNode(config);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = /READY (\S+)/.exec(node.output.join(''));
      if (m) {
        node.url = m[1]!;
        return node;
      }
      if (!node.alive || Date.now() > deadline) {
        node.kill();
        throw new Error(`abuse node did not start: ${node.output.join('')}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** How it ended, for assertion messages. */
  get exitDescription(): string {
    return this.alive
      ? 'running'
      : `exited (code ${this.child.exitCode}, signal ${this.child.signalCode}); output tail: ${this.output.join('').slice(-2000)}`;
  }

  /** RSS now and the peak since the last reset, from `/proc` (no help from the node, so it works while it is busy). */
  procRss(): ProcRss {
    const status = readFileSync(`/proc/${this.child.pid}/status`, 'utf8');
    const kb = (field: string): number =>
      Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]) * 1024;
    return { rss: kb('VmRSS'), peak: kb('VmHWM') };
  }

  /** Resets the kernel's peak-RSS mark (VmHWM) to the current RSS. */
  resetPeak(): void {
    writeFileSync(`/proc/${this.child.pid}/clear_refs`, '5');
  }

  /** `process.memoryUsage()` in the node, after two forced full GCs when `gc`. */
  async memory(gc = true, timeoutMs = 20_000): Promise<NodeMemory & { connections: number }> {
    const r = await this.#request({ op: 'memory', gc }, timeoutMs);
    return { ...r.memory!, connections: r.connections ?? 0 };
  }

  /** Publishes `count` messages of `bytes` payload each to `topic` from the node, one after the other. */
  async publish(topic: string, count: number, bytes: number, timeoutMs = 60_000): Promise<void> {
    await this.#request({ op: 'publish', topic, count, bytes }, timeoutMs);
  }

  async #request(
    request: Distribute<AbuseRequest>,
    timeoutMs: number,
  ): Promise<Extract<AbuseResponse, { ok: true }>> {
    if (!this.alive) throw new Error(`abuse node is not running: ${this.exitDescription}`);
    const id = ++this.#nextId;
    const response = await new Promise<AbuseResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        reject(new Error(`abuse node did not answer '${request.op}' within ${timeoutMs} ms`));
      }, timeoutMs);
      const gone = (): void => reject(new Error(`abuse node died: ${this.exitDescription}`));
      void this.exited.then(gone);
      this.#waiting.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      this.child.send({ ...request, id });
    });
    if (!response.ok) throw new Error(`abuse node failed '${request.op}': ${response.error}`);
    return response;
  }

  /** SIGTERM, then SIGKILL after `timeoutMs`; resolves when it exited. */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (!this.alive) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.kill(), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }

  kill(): void {
    if (this.alive) this.child.kill('SIGKILL');
  }
}
