import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import { parseReadyLine } from './demo/readyLine.ts';
import type { DemoNodeUrls } from './demo/startDemoNode.ts';

/** How many of a node's last stderr lines are kept for the report of its failure. */
const KEPT_LINES = 20;

/** One node process of the cluster. */
export interface ClusterNodeSpec {
  /** 1-based number. */
  index: number;
  nodeName: string;
  /** This node's own environment variables (PORT, MATSSOCKET_NODE_NAME), added to the shared environment. */
  env: Readonly<Record<string, string>>;
}

/** Options of {@link ClusterSupervisor}. */
export interface ClusterSupervisorOptions {
  /** Executable of every node (e.g. `process.execPath`). */
  command: string;
  /** Its arguments (e.g. `--import tsx src/cli/main.ts`). */
  args: readonly string[];
  /** Working directory of the nodes. */
  cwd: string;
  /** Environment shared by every node; each {@link ClusterNodeSpec.env} is added to it. */
  env: Readonly<Record<string, string | undefined>>;
  nodes: readonly ClusterNodeSpec[];
  /** How long a node may take from its spawn to its ready line, in ms. @default 60000 */
  readyTimeoutMs?: number;
  /** How long {@link ClusterSupervisor.stop} waits after SIGTERM before it sends SIGKILL, in ms. @default 15000 */
  stopGraceMs?: number;
}

/** A node that logged its ready line. */
export interface RunningNode {
  index: number;
  nodeName: string;
  pid: number;
  urls: DemoNodeUrls;
}

/** How a node process ended. */
export interface NodeExit {
  index: number;
  nodeName: string;
  pid: number | undefined;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** It ended after {@link ClusterSupervisor.stop} asked it to; otherwise it died on its own. */
  expected: boolean;
  /** It did not stop within the grace period and was killed (SIGKILL). */
  forced: boolean;
  /**
   * Its last stderr lines, oldest first: where `npm start` says why it could not start (its log is on stdout).
   */
  lastErrorLines: readonly string[];
}

/** The outcome of {@link ClusterSupervisor.start}. */
export type ClusterStartResult =
  | { status: 'ready'; nodes: RunningNode[] }
  | { status: 'failed'; nodeName: string; pid: number | undefined; reason: string }
  | { status: 'stopped' };

/** Events of {@link ClusterSupervisor}. */
export interface ClusterSupervisorEvents {
  /** A line a node wrote (without its newline). */
  'node:output': [{ index: number; nodeName: string; stream: 'stdout' | 'stderr'; line: string }];
  'node:ready': [RunningNode];
  'node:exit': [NodeExit];
}

interface NodeState {
  spec: ClusterNodeSpec;
  child: ChildProcess;
  lastErrorLines: string[];
  ready: Promise<RunningNode>;
  exited: Promise<NodeExit>;
  exit?: NodeExit;
  forced: boolean;
}

function eachLine(stream: Readable, onLine: (line: string) => void): void {
  let partial = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) onLine(line);
  });
  stream.on('end', () => {
    if (partial.length > 0) onLine(partial);
    partial = '';
  });
}

/**
 * Runs the node processes of `npm run cluster`: spawns them, reports their output line by line, waits for each
 * one's ready line, reports a node that dies, and stops them all (SIGTERM, then SIGKILL after a grace period). The
 * processes stay in this process's group, so a Ctrl-C on the terminal reaches them too (their StopController takes
 * our SIGTERM right after it as the same request).
 */
export class ClusterSupervisor extends EventEmitter<ClusterSupervisorEvents> {
  readonly #options: ClusterSupervisorOptions;
  readonly #nodes: NodeState[] = [];
  #stopping: Promise<NodeExit[]> | undefined;
  #onStop: (() => void) | undefined;

  constructor(options: ClusterSupervisorOptions) {
    super();
    this.#options = options;
  }

  /**
   * Spawns every node and waits until all are ready, one fails to start (exits, or is not ready within
   * `readyTimeoutMs`), or {@link stop} is called. Call once; on `failed` the caller stops the others.
   */
  async start(): Promise<ClusterStartResult> {
    if (this.#stopping) return { status: 'stopped' };
    for (const spec of this.#options.nodes) this.#nodes.push(this.#spawn(spec));
    const timeoutMs = this.#options.readyTimeoutMs ?? 60_000;
    const timers: NodeJS.Timeout[] = [];
    const failures = this.#nodes.map(
      (n) =>
        new Promise<ClusterStartResult>((resolve) => {
          const failed = (reason: string): void =>
            resolve({ status: 'failed', nodeName: n.spec.nodeName, pid: n.child.pid, reason });
          timers.push(setTimeout(() => failed(`not ready after ${timeoutMs} ms`), timeoutMs));
          void n.exited.then((e) => failed(`exited before it was ready (${describeExit(e)})`));
        }),
    );
    const stopped = new Promise<ClusterStartResult>((resolve) => {
      this.#onStop = () => resolve({ status: 'stopped' });
    });
    const ready = Promise.all(this.#nodes.map((n) => n.ready)).then((nodes): ClusterStartResult => ({
      status: 'ready',
      nodes,
    }));
    try {
      return await Promise.race([ready, stopped, ...failures]);
    } finally {
      for (const t of timers) clearTimeout(t);
      this.#onStop = undefined;
    }
  }

  /** Every spawned node's exit, once all have ended (after {@link start}). */
  allExited(): Promise<NodeExit[]> {
    return Promise.all(this.#nodes.map((n) => n.exited));
  }

  /** How many nodes are still running. */
  get runningCount(): number {
    return this.#nodes.filter((n) => n.exit === undefined).length;
  }

  /**
   * Stops every node that runs: SIGTERM (their graceful stop), then SIGKILL for those still running after
   * `stopGraceMs`. Resolves when all have exited, with every node's exit. Idempotent.
   */
  stop(): Promise<NodeExit[]> {
    this.#stopping ??= (async () => {
      this.#onStop?.();
      for (const n of this.#nodes) if (n.exit === undefined) n.child.kill('SIGTERM');
      const grace = setTimeout(() => this.killAll(), this.#options.stopGraceMs ?? 15_000);
      try {
        return await this.allExited();
      } finally {
        clearTimeout(grace);
      }
    })();
    return this.#stopping;
  }

  /** SIGKILL to every node that runs (a second Ctrl-C, or the grace period is over). */
  killAll(): void {
    for (const n of this.#nodes) {
      if (n.exit !== undefined) continue;
      n.forced = true;
      n.child.kill('SIGKILL');
    }
  }

  #spawn(spec: ClusterNodeSpec): NodeState {
    const child = spawn(this.#options.command, [...this.#options.args], {
      cwd: this.#options.cwd,
      env: { ...this.#options.env, ...spec.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let onReady: (node: RunningNode) => void = () => undefined;
    let onExit: (exit: NodeExit) => void = () => undefined;
    const state: NodeState = {
      spec,
      child,
      lastErrorLines: [],
      forced: false,
      ready: new Promise((resolve) => (onReady = resolve)),
      exited: new Promise((resolve) => (onExit = resolve)),
    };
    const output = (stream: 'stdout' | 'stderr', line: string): void => {
      if (stream === 'stderr') {
        state.lastErrorLines.push(line);
        if (state.lastErrorLines.length > KEPT_LINES) state.lastErrorLines.shift();
      }
      this.emit('node:output', { index: spec.index, nodeName: spec.nodeName, stream, line });
      const urls = stream === 'stdout' && child.pid !== undefined ? parseReadyLine(line) : undefined;
      if (urls) {
        const node = { index: spec.index, nodeName: spec.nodeName, pid: child.pid!, urls };
        onReady(node);
        this.emit('node:ready', node);
      }
    };
    eachLine(child.stdout, (line) => output('stdout', line));
    eachLine(child.stderr, (line) => output('stderr', line));
    const finish = (code: number | null, signal: NodeJS.Signals | null, why?: string): void => {
      if (state.exit) return;
      if (why !== undefined) state.lastErrorLines.push(why);
      state.exit = {
        index: spec.index,
        nodeName: spec.nodeName,
        pid: child.pid,
        code,
        signal,
        expected: this.#stopping !== undefined,
        forced: state.forced,
        lastErrorLines: [...state.lastErrorLines],
      };
      onExit(state.exit);
      this.emit('node:exit', state.exit);
    };
    // 'close': the process has exited and its output is read to the end.
    child.once('close', (code, signal) => finish(code, signal));
    child.once('error', (err) => {
      if (child.pid === undefined)
        finish(null, null, `cannot start ${this.#options.command}: ${err.message}`);
    });
    return state;
  }
}

/** `code 1` or `signal SIGKILL`, with the last line on stderr if any. */
export function describeExit(exit: NodeExit): string {
  const how = exit.signal !== null ? `signal ${exit.signal}` : `code ${exit.code ?? '?'}`;
  const last = exit.lastErrorLines.findLast((l) => l.trim().length > 0);
  return last === undefined ? how : `${how}: ${last.trim()}`;
}
