import type { Transport } from '../broker/Transport.ts';
import type { MatsSocketServer } from '../server/MatsSocketServer.ts';
import type { ClusterStoreAndForward } from '../store/ClusterStoreAndForward.ts';

/** What a readiness check looks at: the node's server, its store's database and its broker connection. */
export interface HealthTargets {
  /** Names the node and counts its live sessions. */
  server: Pick<MatsSocketServer, 'nodeName' | 'getActiveSessions'>;
  /** The store (its `knex` is probed with `SELECT 1`). */
  store: Pick<ClusterStoreAndForward, 'knex'>;
  /** The transport (its `state` must be `connected`). */
  transport: Pick<Transport, 'state'>;
  /** How long the database probe may take before the store counts as down, in ms. @default 2000 */
  probeTimeoutMs?: number | undefined;
}

/** A part of the node a readiness check can find down. */
export type HealthPart = 'store' | 'broker';

/** The readiness document (`/health/ready`, and `/health` of the demo node). */
export interface HealthReport {
  status: 'UP' | 'DOWN';
  node: string;
  /** The parts that are down; empty when UP. */
  down: HealthPart[];
  store: { status: 'UP' | 'DOWN'; latencyMs?: number; error?: string };
  broker: { status: 'UP' | 'DOWN'; state: string };
  /** Sessions held by this node. */
  liveSessions: number;
}

/** The default of {@link HealthTargets.probeTimeoutMs}, in ms. */
export const DEFAULT_HEALTH_PROBE_TIMEOUT_MS = 2000;

/**
 * Checks the node's database (`SELECT 1`, bounded by `probeTimeoutMs`) and broker connection (the transport's
 * state). Either one down makes the node DOWN. Never throws: a failing probe is a DOWN store.
 */
export async function checkHealth(targets: HealthTargets): Promise<HealthReport> {
  const timeoutMs = targets.probeTimeoutMs ?? DEFAULT_HEALTH_PROBE_TIMEOUT_MS;
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  let store: HealthReport['store'];
  try {
    await Promise.race([
      targets.store.knex.raw('SELECT 1'),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    store = { status: 'UP', latencyMs: Date.now() - started };
  } catch (err) {
    store = { status: 'DOWN', error: err instanceof Error ? err.message : String(err) };
  } finally {
    clearTimeout(timer);
  }
  const state = targets.transport.state;
  const broker: HealthReport['broker'] = { status: state === 'connected' ? 'UP' : 'DOWN', state };
  const down: HealthPart[] = [];
  if (store.status === 'DOWN') down.push('store');
  if (broker.status === 'DOWN') down.push('broker');
  return {
    status: down.length === 0 ? 'UP' : 'DOWN',
    node: targets.server.nodeName,
    down,
    store,
    broker,
    liveSessions: targets.server.getActiveSessions().length,
  };
}
