import type { MatsFactory } from '../mats/MatsFactory.ts';
import { MatsRefuseMessageError } from '../mats/MatsErrors.ts';
import type { StageContext } from '../mats/StageContext.ts';
import type { MatsSocketServer } from '../server/MatsSocketServer.ts';
import type { IncomingHandler } from '../server/messaging/EndpointTypes.ts';
import type { ClusterStoreAndForward } from '../store/ClusterStoreAndForward.ts';
import { isAllowed } from './allowRule.ts';
import type { GatewayConfig, GatewayEndpoint, GatewayTerminator } from './GatewayConfig.ts';
import { asGatewayPrincipal } from './GatewayPrincipal.ts';

/** What a backend sends to a terminator's `from` endpoint (docs/gateway.md §4). */
export interface PushToClient {
  /** The session to deliver to (a forwarded message carries it as the string sideload `matsSocketSessionId`). */
  sessionId?: string;
  /** Or: every session of this user, connected or not. */
  userId?: string;
  /** What the client terminator gets. @default null */
  message?: unknown;
}

/** What a backend sends to `publish.from` (docs/gateway.md §5). */
export interface PublishToTopic {
  topic: string;
  /** @default null */
  message?: unknown;
}

/** The node's pieces the routing is registered on. */
export interface RoutingTarget {
  readonly server: MatsSocketServer;
  readonly factory: MatsFactory;
  readonly store: ClusterStoreAndForward;
}

/**
 * Registers a configuration's routing on a node before it starts: one MatsSocket endpoint per `endpoints` entry
 * (forwarding to its Mats endpoint; replies go back unchanged), and one Mats terminator per `terminators` entry and
 * for `publish`, which the node consumes. The terminators de-duplicate by message id (the Mats inbox) and store
 * their outbox rows in the stage's transaction, so a backend message redelivered reaches the client once.
 */
export function registerGatewayRouting(
  node: RoutingTarget,
  config: Pick<GatewayConfig, 'endpoints' | 'terminators' | 'publish'>,
): void {
  for (const endpoint of config.endpoints) {
    node.server.endpoint(endpoint.id, { incoming: forwarder(endpoint) });
  }
  for (const terminator of config.terminators) {
    node.factory.terminator<unknown, unknown>(
      terminator.from,
      (ctx, _state, incoming) => pushToClient(node, terminator, ctx, incoming),
      { inbox: true },
    );
  }
  const publish = config.publish;
  if (publish) {
    node.factory.terminator<unknown, unknown>(
      publish.from,
      async (ctx, _state, incoming) => {
        const msg = incoming as Partial<PublishToTopic> | null;
        if (typeof msg?.topic !== 'string' || msg.topic.length === 0) {
          throw new MatsRefuseMessageError(`${publish.from}: expected {"topic": "<topic id>", "message": …}`);
        }
        await node.server.publish(ctx.traceId, msg.topic, msg.message ?? null);
      },
      { inbox: true },
    );
  }
}

function forwarder(endpoint: GatewayEndpoint): IncomingHandler {
  const { to, mode, timeoutMs, allow } = endpoint;
  return (ctx) => {
    if (!isAllowed(allow, asGatewayPrincipal(ctx.principal))) {
      ctx.deny();
      return;
    }
    const message = ctx.message ?? null;
    if (mode === 'forward-essential') ctx.forwardEssential(to, message);
    else if (timeoutMs === undefined) ctx.forwardNonessential(to, message);
    else ctx.forward(to, message, (init) => init.nonPersistent(timeoutMs).noAudit());
  };
}

async function pushToClient(
  node: RoutingTarget,
  terminator: GatewayTerminator,
  ctx: StageContext<never>,
  incoming: unknown,
): Promise<void> {
  const msg = incoming as PushToClient | null;
  const bySession = typeof msg?.sessionId === 'string' && msg.sessionId.length > 0;
  const byUser = typeof msg?.userId === 'string' && msg.userId.length > 0;
  if (!msg || bySession === byUser) {
    // Refused: dead-lettered at once, as retrying cannot make it valid.
    throw new MatsRefuseMessageError(
      `${terminator.from}: expected {"sessionId": "…", "message": …} or {"userId": "…", "message": …}`,
    );
  }
  const message = msg.message ?? null;
  // Read in the stage's own transaction: SQLite has one connection, which that transaction holds.
  const sessionIds = bySession
    ? [msg.sessionId!]
    : (await node.store.getSessions({ userId: msg.userId! }, await ctx.sql())).map((s) => s.id);
  let delivered = 0;
  for (const sessionId of sessionIds) {
    if (await node.server.send(sessionId, ctx.traceId, terminator.id, message)) delivered++;
  }
  if (delivered === 0) {
    ctx.log.info(
      { terminator: terminator.id, sessionId: msg.sessionId, userId: msg.userId },
      'push to a client dropped: no such session',
    );
  }
}
