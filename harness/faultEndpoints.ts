import type { MatsFactory } from '../src/mats/MatsFactory.ts';
import type { MatsSocketServer } from '../src/server/MatsSocketServer.ts';

/** What `Fault.echo` replies: the request's id, the node whose backend ran it. */
export interface EchoReply {
  id: string;
  node: string;
}

/** Counts backend runs per endpoint (poison: how often the always-failing stage ran). */
export class BackendRuns {
  readonly perEndpoint = new Map<string, number>();

  add(endpointId: string): void {
    this.perEndpoint.set(endpointId, (this.perEndpoint.get(endpointId) ?? 0) + 1);
  }

  get(endpointId: string): number {
    return this.perEndpoint.get(endpointId) ?? 0;
  }
}

/** The error the poison endpoint always throws. */
export class PoisonError extends Error {
  constructor() {
    super('Fault.poison always throws');
    this.name = 'PoisonError';
  }
}

/**
 * The endpoints of the fault suite, on every node: `Fault.echo` (MatsSocket endpoint forwarding to a backend Mats
 * endpoint that waits `sleepMs` (if given) and replies `{ id, node }`, the full pipeline: inbox → broker → Mats → outbox → WebSocket) and
 * `Fault.poison` (the backend always throws).
 */
export function registerFaultEndpoints(runs: BackendRuns) {
  return (server: MatsSocketServer, factory: MatsFactory): void => {
    factory.single<EchoReply, { id: string; sleepMs?: number }>('Fault.echo', async (_ctx, msg) => {
      runs.add('Fault.echo');
      if ((msg.sleepMs ?? 0) > 0) await new Promise((r) => setTimeout(r, msg.sleepMs));
      return { id: msg.id, node: factory.options.nodeName };
    });
    factory.single<EchoReply, unknown>('Fault.poison', () => {
      runs.add('Fault.poison');
      throw new PoisonError();
    });
    server.endpoint('Fault.echo', { incoming: (ctx) => ctx.forwardEssential('Fault.echo', ctx.message) });
    server.endpoint('Fault.poison', { incoming: (ctx) => ctx.forwardEssential('Fault.poison', ctx.message) });
  };
}
