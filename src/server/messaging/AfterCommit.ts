import type { SessionRegistration } from '../../store/storeTypes.ts';
import type { NodePokes } from '../cluster/NodePokes.ts';
import type { ServerCore } from '../ServerCore.ts';
import type { TopicHub } from '../topics/TopicHub.ts';
import type { AttemptedRows, CommittedEffects } from './CommittedEffects.ts';
import { retryWhileDatabaseUnavailable, serverOutageRetry } from './retryWhileDatabaseUnavailable.ts';

/**
 * This node's delivery to its own sessions: the outbound `Forwarder`. Named by its shape here, because the shared
 * `messaging/` folder must not import from `outbound/` (both directions import this folder).
 */
export interface LocalForwarding {
  /** Runs (or re-runs) the forward loop of a session held here. */
  poke(sessionId: string): void;
  /** Writes rows stored already attempted by a connection of this node, from memory. */
  writeAttempted(sessionId: string, written: AttemptedRows): void;
}

/**
 * What happens after a commit that stored messages for clients or topic publishes, wherever it was committed
 * (incoming handling, client replies and NACKs, backend replies, request timeouts, `server.send/request`, a
 * requeued dead letter): the holders of the sessions written to are poked (this node's forwarder at once, other
 * nodes coalesced through {@link NodePokes}), rows stored already attempted by a connection of this node are
 * written from memory, and topic publishes are broadcast. A commit inside a Mats stage does not come here: its
 * pokes are outgoing messages of the stage (`NodeControl.pokeFromStage`).
 */
export class AfterCommit {
  readonly #core: ServerCore;
  readonly #forwarding: LocalForwarding;
  readonly #pokes: NodePokes;
  readonly #topics: TopicHub;

  constructor(core: ServerCore, forwarding: LocalForwarding, pokes: NodePokes, topics: TopicHub) {
    this.#core = core;
    this.#forwarding = forwarding;
    this.#pokes = pokes;
    this.#topics = topics;
  }

  /** Acts on the effects of one commit. */
  run(effects: CommittedEffects): void {
    this.poke(effects.registrations);
    if (effects.attempted) {
      for (const [sessionId, written] of effects.attempted)
        this.#forwarding.writeAttempted(sessionId, written);
    }
    if (effects.publishes.length > 0) {
      const core = this.#core;
      // Tracked, so that a graceful stop waits for it; a failed broadcast of logged publishes is kept by the
      // hub and sent again.
      void core.track(
        this.#topics
          .broadcast(effects.publishes)
          .catch((err: unknown) => core.logger.warn({ err }, 'topic broadcast failed')),
      );
    }
  }

  /**
   * A reply found already stored (a duplicate delivery of its Mats message) for a session held here: its first
   * processing may have stored it attempted by the connection and then not written it (the commit's outcome was
   * lost, or the node stopped between commit and write), and a row stored attempted is fetched by nothing. So the
   * session's attempted rows are unmarked (as a resume does; the client de-duplicates by smid) and its loop
   * fetches them. Duplicates are rare, so the extra statement is too.
   */
  async recoverAttempted(sessionId: string): Promise<void> {
    const core = this.#core;
    await retryWhileDatabaseUnavailable(
      () => core.store.outboxMessagesUnmarkAttemptedDelivery(sessionId),
      serverOutageRetry(core, 'unmarking a duplicate reply'),
    );
    this.#forwarding.poke(sessionId);
  }

  /** Pokes the holders of these sessions: local ones in-process (once each), others coalesced per node. */
  poke(registrations: readonly (SessionRegistration | null)[]): void {
    const node = this.#core.options.nodeName;
    let local: Set<string> | undefined;
    for (const reg of registrations) {
      if (!reg) continue;
      if (reg.nodename !== node) this.#pokes.queue(reg.nodename, reg.sessionId);
      else if (!local?.has(reg.sessionId)) {
        (local ??= new Set()).add(reg.sessionId);
        this.#forwarding.poke(reg.sessionId);
      }
    }
  }
}
