import type { MatsEndpoint } from '../../mats/MatsEndpoint.ts';
import type { MatsFactory } from '../../mats/MatsFactory.ts';
import type { MatsInitiator } from '../../mats/MatsInitiator.ts';
import { sanitizeId } from '../../mats/matsIds.ts';
import type { StageContext } from '../../mats/StageContext.ts';
import { runOutsideStageContext } from '../../mats/ambientContext.ts';
import type { SessionRegistration } from '../../store/storeTypes.ts';
import { HelloReasons } from '../connection/HelloHandler.ts';
import { closePendingResumes, pendingResume } from '../connection/PendingResumes.ts';
import { GroupCommitter } from '../messaging/GroupCommitter.ts';
import type { ServerCore } from '../ServerCore.ts';
import { NodePokes } from './NodePokes.ts';

/** Node-to-node notices (docs/protocol.md section 10), published to `MatsSocket.<inst>.nodeControl.<node>`. */
export type NodeControlMessage =
  | { t: 'NewMsg'; sids: string[]; ts: number; hops?: number }
  | { t: 'CloseSess'; sid: string; reason: string }
  /** `also`: more connections to close on the same node (resumes batched in one turn, e.g. a reconnect storm). */
  | { t: 'CloseWS'; sid: string; cid: string; also?: { sid: string; cid: string }[] };

/** One remote takeover notice waiting to be sent. */
interface CloseWsItem {
  node: string;
  sid: string;
  cid: string;
}

/** Pokes forwarded between nodes at most this often (a registration moving around). */
const MAX_POKE_HOPS = 3;

/**
 * The node-specific subscription terminator that receives pokes (`NewMsg`), `CloseSess` and `CloseWS`, and the
 * sending side: pokes after a commit go through {@link pokes} (coalesced per node), a stage's pokes ride its
 * commit ({@link pokeFromStage}). Pokes are best-effort (topic semantics), but an outage of the broker connection
 * loses them on both sides: those this node could not publish, and those published to its exclusive queue while
 * it was gone. So when the connection is back, the failed ones are sent again and, after `reconnectHealDelayMs`,
 * every live session with pending messages is forwarded; the self-heal sweep (BR-3) covers the rest.
 */
export class NodeControl {
  /** Pokes to other nodes after a commit, published through this node control. */
  readonly pokes: NodePokes;
  readonly #core: ServerCore;
  readonly #factory: MatsFactory;
  readonly #initiator: MatsInitiator;
  readonly #prefix: string;
  #endpoint: MatsEndpoint | undefined;
  #healTimer: NodeJS.Timeout | undefined;
  readonly #closeWs: GroupCommitter<CloseWsItem, { failed?: unknown }>;
  readonly #onConnected = ({ reconnect }: { reconnect: boolean }): void => {
    if (reconnect) this.#afterReconnect();
  };

  constructor(core: ServerCore, factory: MatsFactory) {
    this.#core = core;
    this.#factory = factory;
    this.#prefix = `MatsSocket.${core.options.instanceName}.nodeControl.`;
    this.#initiator = factory.getOrCreateInitiator(`MatsSocket.${core.options.instanceName}.control`, {
      outbox: false,
    });
    this.pokes = new NodePokes(core, (node, sids) =>
      this.#publish(node, { t: 'NewMsg', sids, ts: core.now() }),
    );
    // Takeover notices of the resumes finishing in one event-loop turn go to each node in one message: after a
    // node dies, its thousands of sessions resume elsewhere and each would otherwise cost a confirmed publish.
    this.#closeWs = new GroupCommitter<CloseWsItem, { failed?: unknown }>({
      windowMs: 0,
      maxItems: 500,
      commit: async (items) => {
        const byNode = new Map<string, CloseWsItem[]>();
        for (const item of items) {
          const list = byNode.get(item.node) ?? [];
          list.push(item);
          byNode.set(item.node, list);
        }
        // One node's failed publish fails only its own items.
        const failedByNode = new Map<string, unknown>();
        await Promise.all(
          [...byNode].map(async ([node, list]) => {
            const [first, ...rest] = list;
            try {
              await this.#publish(node, {
                t: 'CloseWS',
                sid: first!.sid,
                cid: first!.cid,
                ...(rest.length > 0 ? { also: rest.map(({ sid, cid }) => ({ sid, cid })) } : {}),
              });
            } catch (err) {
              failedByNode.set(node, err);
            }
          }),
        );
        return items.map((item) =>
          failedByNode.has(item.node) ? { failed: failedByNode.get(item.node) } : {},
        );
      },
    });
  }

  /** The node control endpoint id of `nodeName`. */
  endpointIdOf(nodeName: string): string {
    return sanitizeId(`${this.#prefix}${nodeName}`);
  }

  /** Registers this node's subscription terminator. */
  register(): MatsEndpoint {
    const id = this.endpointIdOf(this.#core.options.nodeName);
    this.#endpoint = this.#factory
      .createInternalEndpoint(id, 'subscriptionTerminator', {
        concurrency: 1,
        interactiveConcurrency: 1,
        inbox: false,
        outbox: false,
      })
      .addOnlyStage(
        (_ctx, _state, incoming) =>
          runOutsideStageContext(() => this.#receive(incoming as NodeControlMessage)),
        false,
      );
    this.#factory.options.transport.on('transport:connected', this.#onConnected);
    return this.#endpoint;
  }

  /** Stops reacting to reconnects (server stop). Idempotent. */
  detach(): void {
    this.#factory.options.transport.off('transport:connected', this.#onConnected);
    clearTimeout(this.#healTimer);
    this.#healTimer = undefined;
  }

  #afterReconnect(): void {
    const core = this.#core;
    if (core.isStopped()) return;
    this.pokes.resendUnsent();
    clearTimeout(this.#healTimer);
    this.#healTimer = setTimeout(() => {
      this.#healTimer = undefined;
      void core.track(
        this.#pokeLiveWithPending().catch((err: unknown) =>
          core.logger.warn({ err }, 'forwarding after reconnect failed; the self-heal sweep will deliver'),
        ),
      );
    }, core.options.timings.reconnectHealDelayMs);
  }

  async #pokeLiveWithPending(): Promise<void> {
    const core = this.#core;
    const live = core.registry
      .connections()
      .filter((c) => c.established)
      .map((c) => c.sessionId!);
    if (live.length === 0) return;
    const pending = await core.store.hasPendingOutbox(live, core.now());
    if (pending.length > 0)
      core.logger.info({ sessions: pending.length }, 'forwarding after broker reconnect');
    for (const sessionId of pending) core.pokeForwarder(sessionId);
  }

  /** Inside a stage: the poke is one of the stage's outgoing messages, so it is sent only after its commit. */
  async pokeFromStage(
    ctx: StageContext,
    registrations: readonly (SessionRegistration | null)[],
  ): Promise<void> {
    const byNode = new Map<string, string[]>();
    for (const reg of registrations) {
      if (!reg) continue;
      const list = byNode.get(reg.nodename) ?? [];
      list.push(reg.sessionId);
      byNode.set(reg.nodename, list);
    }
    if (byNode.size === 0) return;
    await ctx.initiate((init) => {
      for (const [node, sids] of byNode) {
        const msg: NodeControlMessage = { t: 'NewMsg', sids, ts: this.#core.now() };
        init
          .traceId(`MatsSocket.poke[${sids[0]}]`)
          .from(this.#prefix.slice(0, -1))
          .to(this.endpointIdOf(node))
          .publish(msg);
      }
    });
  }

  /**
   * Remote takeover: tell `nodeName` to close the connection `connectionId` with 4003. Resolves when the notice is
   * published (confirmed); notices of the same turn share one message per node.
   */
  async sendCloseWs(nodeName: string, sessionId: string, connectionId: string): Promise<void> {
    const result = await this.#closeWs.submit({ node: nodeName, sid: sessionId, cid: connectionId });
    if ('failed' in result) throw result.failed;
  }

  /** Tell `nodeName` to close the session `sessionId` (4000) and terminate it. */
  sendCloseSession(nodeName: string, sessionId: string, reason: string): Promise<void> {
    return this.#publish(nodeName, { t: 'CloseSess', sid: sessionId, reason });
  }

  /** Sends pokes still being coalesced and waits for publishes in flight. */
  async flush(): Promise<void> {
    await Promise.allSettled([this.pokes.flush(), this.#closeWs.idle()]);
  }

  async #publish(nodeName: string, message: NodeControlMessage): Promise<void> {
    await runOutsideStageContext(() =>
      this.#initiator.initiate((init) => {
        init
          .traceId(`MatsSocket.${message.t}`)
          .from(this.#prefix.slice(0, -1))
          .to(this.endpointIdOf(nodeName))
          .publish(message);
      }),
    );
  }

  async #receive(message: NodeControlMessage): Promise<void> {
    const core = this.#core;
    switch (message.t) {
      case 'NewMsg':
        core.metrics.pokeLatency((core.now() - message.ts) / 1000);
        for (const sid of message.sids) await this.#onPoke(sid, message.hops ?? 0);
        return;
      case 'CloseWS': {
        for (const { sid, cid } of [message, ...(Array.isArray(message.also) ? message.also : [])]) {
          const held = core.registry.get(sid);
          // A resume between its store write and its local registration is closed too: it was taken over.
          const conn = held?.connectionId === cid ? held : pendingResume(core, sid, cid);
          conn?.close(4003, HelloReasons.takeoverRemote);
        }
        return;
      }
      case 'CloseSess': {
        const conn = core.registry.get(message.sid);
        if (conn) {
          conn.close(4000, `Server Side: ${message.reason}`);
          return;
        }
        closePendingResumes(core, message.sid, message.reason);
        if (await core.store.closeSession(message.sid)) {
          core.events.emit('sessionRemoved', {
            type: 'CLOSE',
            sessionId: message.sid,
            reason: message.reason,
          });
        }
        return;
      }
      default:
        core.logger.warn({ message }, 'unknown node control message');
    }
  }

  async #onPoke(sessionId: string, hops: number): Promise<void> {
    const core = this.#core;
    if (core.registry.get(sessionId)) {
      core.pokeForwarder(sessionId);
      return;
    }
    const reg = await core.store.getCurrentRegisteredNodeForSession(sessionId);
    if (!reg) return;
    if (reg.nodename === core.options.nodeName) {
      // Registered here but not live here: a stale registration, unless a HELLO is just finishing its resume.
      if (pendingResume(core, sessionId, reg.connectionId)) return;
      await core.store.deregisterSessionFromThisNode(sessionId, reg.connectionId);
      return;
    }
    if (hops >= MAX_POKE_HOPS) return;
    await this.#publish(reg.nodename, { t: 'NewMsg', sids: [sessionId], ts: core.now(), hops: hops + 1 });
  }
}
