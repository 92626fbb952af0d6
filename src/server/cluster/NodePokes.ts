import type { ServerCore } from '../ServerCore.ts';

/** Sessions whose failed pokes are kept for re-sending after a reconnect, at most (the rest: self-heal sweep). */
const MAX_UNSENT_POKES = 10_000;

/**
 * The sending side of pokes to other nodes after a commit (docs/protocol.md §10): coalesced per node for
 * `pokeCoalesceMs`, then one `NewMsg` per node. Pokes are best-effort (topic semantics); those whose publish
 * failed are kept (at most {@link MAX_UNSENT_POKES} sessions) until {@link resendUnsent} after the broker
 * connection is back, and the self-heal sweep (BR-3) covers the rest. Owned by `NodeControl`, which publishes.
 */
export class NodePokes {
  readonly #core: ServerCore;
  readonly #publish: (nodeName: string, sessionIds: string[]) => Promise<void>;
  readonly #pending = new Map<string, Set<string>>();
  #timer: NodeJS.Timeout | undefined;
  readonly #inFlight = new Set<Promise<unknown>>();
  /** Pokes whose publish failed, by node, until the broker connection is back. */
  readonly #unsent = new Map<string, Set<string>>();
  #unsentCount = 0;

  /** `publish`: sends one `NewMsg` for `sessionIds` to `nodeName`, resolving once published. */
  constructor(core: ServerCore, publish: (nodeName: string, sessionIds: string[]) => Promise<void>) {
    this.#core = core;
    this.#publish = publish;
  }

  /** Pokes `nodeName` about `sessionId` with the others of the coalescing window. */
  queue(nodeName: string, sessionId: string): void {
    let sids = this.#pending.get(nodeName);
    if (!sids) this.#pending.set(nodeName, (sids = new Set()));
    sids.add(sessionId);
    this.#timer ??= setTimeout(() => this.#flushPokes(), this.#core.options.timings.pokeCoalesceMs);
  }

  /** The broker connection is back: queues the pokes whose publish failed again. */
  resendUnsent(): void {
    for (const [node, sids] of this.#unsent) for (const sid of sids) this.queue(node, sid);
    this.#unsent.clear();
    this.#unsentCount = 0;
  }

  /** Sends the pokes still being coalesced and waits for publishes in flight. */
  async flush(): Promise<void> {
    this.#flushPokes();
    await Promise.allSettled([...this.#inFlight]);
  }

  #flushPokes(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const [node, sids] of this.#pending) {
      const p = this.#publish(node, [...sids]).catch((err: unknown) => {
        this.#core.logger.warn({ err, node }, 'poke failed; sent again after reconnect, else self-heal');
        this.#keepUnsent(node, sids);
      });
      this.#inFlight.add(p);
      void p.finally(() => this.#inFlight.delete(p));
    }
    this.#pending.clear();
  }

  #keepUnsent(node: string, sids: ReadonlySet<string>): void {
    let kept = this.#unsent.get(node);
    if (!kept) this.#unsent.set(node, (kept = new Set()));
    for (const sid of sids) {
      if (this.#unsentCount >= MAX_UNSENT_POKES) return;
      if (!kept.has(sid)) {
        kept.add(sid);
        this.#unsentCount++;
      }
    }
  }
}
