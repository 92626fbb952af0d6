import type { AssembledNode } from '../NodeAssembly.ts';

/** The `/health` document. */
export interface HealthReport {
  status: 'UP' | 'DOWN';
  node: string;
  store: { status: 'UP' | 'DOWN'; latencyMs?: number; error?: string };
  broker: { status: 'UP' | 'DOWN'; state: string };
  /** Sessions held by this node. */
  liveSessions: number;
}

/**
 * Checks the node's database (`SELECT 1`, bounded by `timeoutMs`) and broker connection (the transport's state).
 * Either one down makes the node DOWN (→ HTTP 503).
 */
export async function checkHealth(node: AssembledNode, timeoutMs = 2000): Promise<HealthReport> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  let store: HealthReport['store'];
  try {
    await Promise.race([
      node.knex.raw('SELECT 1'),
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
  const state = node.transport.state;
  const broker: HealthReport['broker'] = { status: state === 'connected' ? 'UP' : 'DOWN', state };
  return {
    status: store.status === 'UP' && broker.status === 'UP' ? 'UP' : 'DOWN',
    node: node.nodeName,
    store,
    broker,
    liveSessions: node.server.getActiveSessions().length,
  };
}
