/**
 * The chaos soak's fault schedule: a seed turns into a fixed list of timed fault actions, so a failing run can be
 * replayed exactly with `CHAOS_SEED=<n>` (the actions, their targets and their lengths; not the interleaving with
 * the load, which the machine decides).
 */

/** What a fault action does. */
export type ChaosActionKind =
  /** `kill -9` of a MatsSocket node process, then a restart under the same name and port. */
  | 'kill-node'
  /** `kill -9` of the backend (Mats endpoints) process, then a restart. */
  | 'kill-backend'
  /** The soak's private RabbitMQ node stops gracefully (SIGTERM), stays down `durationMs`, starts again. */
  | 'rabbitmq-restart'
  /** The private RabbitMQ node's processes get `kill -9`, stay down `durationMs`, start again. */
  | 'rabbitmq-kill'
  /** The soak's private MariaDB server shuts down gracefully, stays down `durationMs`, starts again. */
  | 'mariadb-restart'
  /** The private MariaDB server gets `kill -9` (InnoDB recovers at the next start). */
  | 'mariadb-kill'
  /**
   * Every connection to a service (`target`: `rabbitmq` or `mariadb`) is cut at its proxy, and new ones are refused
   * for `durationMs`, while the service itself stays up (a network fault, not a restart).
   */
  | 'cut-service'
  /** The clients' WebSocket connections are cut (the sessions live on). */
  | 'cut-clients'
  /** SIGSTOP of a process for `durationMs`, then SIGCONT. */
  | 'pause';

export interface ChaosAction {
  /** When the action starts, ms after the chaos began. */
  atMs: number;
  kind: ChaosActionKind;
  /** The process hit (`kill-node`, `kill-backend`, `pause`: a node name or `backend`), or the service cut. */
  target?: string;
  /** Outage or pause length, or how long a killed process or stopped service stays down before its restart, ms. */
  durationMs: number;
}

export interface ChaosScheduleOptions {
  seed: number;
  /** Length of the chaos phase, ms: no action starts later than this. */
  durationMs: number;
  /** The node names (targets of `kill-node` and `pause`). */
  nodes: readonly string[];
  /** Quiet time between the end of one action and the start of the next, ms. @default [1000, 3000] */
  gapMs?: readonly [number, number];
}

/** The target name of the backend process in actions. */
export const BACKEND = 'backend';

/** The services a `cut-service` action may cut. */
export const SERVICES = ['rabbitmq', 'mariadb'] as const;

/** mulberry32: a tiny, well-mixed 32-bit PRNG; the same seed gives the same sequence on every platform. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Relative weights of the kinds; kills, restarts and cuts are the faults that lose messages when something is
 * wrong. Each service restart kind (graceful and `kill -9`, of both services) runs at least once in every run.
 */
const WEIGHTS: readonly (readonly [ChaosActionKind, number])[] = [
  ['kill-node', 3],
  ['kill-backend', 2],
  ['rabbitmq-restart', 1],
  ['rabbitmq-kill', 1],
  ['mariadb-restart', 1],
  ['mariadb-kill', 1],
  ['cut-service', 2],
  ['cut-clients', 2],
  ['pause', 2],
];

/**
 * Length of each kind's fault, ms (min, max). For restarts it is the time the service stays down between its stop
 * and its start; the start itself adds its boot (RabbitMQ ~5 s), which the run absorbs (see ChaosCluster.run).
 */
const LENGTHS: Record<ChaosActionKind, readonly [number, number]> = {
  'kill-node': [300, 1500],
  'kill-backend': [300, 1500],
  'rabbitmq-restart': [200, 1500],
  'rabbitmq-kill': [200, 1500],
  'mariadb-restart': [200, 1500],
  'mariadb-kill': [200, 1500],
  'cut-service': [1500, 3500],
  'cut-clients': [200, 1000],
  pause: [1000, 3000],
};

/**
 * The schedule of a seed: actions one after the other (each ends before the next starts, so at most one node is
 * down and the cluster can always serve), the first one after one gap, the kinds drawn by weight. Every kind of the
 * first round of draws is forced to differ until all kinds have run once, so even a short CI run hits each fault.
 */
export function buildSchedule(options: ChaosScheduleOptions): ChaosAction[] {
  if (!Number.isInteger(options.seed)) throw new Error(`seed must be an integer, got ${options.seed}`);
  if (options.nodes.length === 0) throw new Error('at least one node is needed');
  const random = seededRandom(options.seed);
  const [gapMin, gapMax] = options.gapMs ?? [1000, 3000];
  const between = (min: number, max: number): number => Math.round(min + random() * (max - min));
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const unseen = new Set<ChaosActionKind>(WEIGHTS.map(([k]) => k));
  const actions: ChaosAction[] = [];
  let at = between(gapMin, gapMax);
  while (at <= options.durationMs) {
    const candidates = unseen.size > 0 ? WEIGHTS.filter(([k]) => unseen.has(k)) : WEIGHTS;
    const total = candidates.reduce((sum, [, w]) => sum + w, 0);
    let r = random() * total;
    let kind = candidates[candidates.length - 1]![0];
    for (const [k, w] of candidates) {
      if ((r -= w) < 0) {
        kind = k;
        break;
      }
    }
    unseen.delete(kind);
    const durationMs = between(...LENGTHS[kind]);
    const action: ChaosAction = { atMs: at, kind, durationMs };
    if (kind === 'kill-node') action.target = pick(options.nodes);
    if (kind === 'kill-backend') action.target = BACKEND;
    if (kind === 'cut-service') action.target = pick(SERVICES);
    if (kind === 'pause') action.target = pick([...options.nodes, BACKEND]);
    actions.push(action);
    at += durationMs + between(gapMin, gapMax);
  }
  return actions;
}

/** The seed to use: `CHAOS_SEED` if set (a replay), else a fresh one. */
export function chaosSeed(env: NodeJS.ProcessEnv = process.env): number {
  const given = env.CHAOS_SEED;
  if (given === undefined || given === '') return Math.floor(Math.random() * 2 ** 31);
  const seed = Number(given);
  if (!Number.isInteger(seed) || seed < 0)
    throw new Error(`CHAOS_SEED must be a non-negative integer: ${given}`);
  return seed;
}

/** One line per action, for the test output and failure messages. */
export function describeAction(a: ChaosAction): string {
  const target = a.target === undefined ? '' : ` ${a.target}`;
  return `t+${(a.atMs / 1000).toFixed(1)}s ${a.kind}${target} (${a.durationMs} ms)`;
}
