import type { Knex } from 'knex';
import type { MatsEndpoint } from '../../mats/MatsEndpoint.ts';
import type { MatsFactory } from '../../mats/MatsFactory.ts';
import type { MatsInitiate } from '../../mats/MatsInitiate.ts';
import type { MatsInitiator } from '../../mats/MatsInitiator.ts';
import { runOutsideStageContext } from '../../mats/ambientContext.ts';
import { currentStageContext } from '../../mats/ambientContext.ts';
import { serverInitiatedDebugAtCreation } from '../../protocol/debugOptions.ts';
import type { C2SSub } from '../../protocol/envelopes.ts';
import type { MatsSocketConnection } from '../connection/MatsSocketConnection.ts';
import { currentHandlerScope, type CollectedPublish } from '../messaging/HandlerScope.ts';
import { newSmid } from '../messaging/OutboxWriter.ts';
import type { ServerCore } from '../ServerCore.ts';
import type { PreparedPublish } from './PreparedPublish.ts';
import { BroadcastRetry } from './BroadcastRetry.ts';
import { TopicContinuity } from './TopicContinuity.ts';
import { TopicSubscriptions } from './TopicSubscriptions.ts';

export type { PreparedPublish } from './PreparedPublish.ts';

/**
 * Topics (docs/protocol.md 8.12 and BR-1): `publish` appends to the per-topic replay log and commits, then broadcasts
 * through the subscription terminator `MatsSocket.<inst>.publish` to every node; each node delivers to its local
 * subscribers (10 ms coalescing). SUB/UNSUB are handled per connection by {@link TopicSubscriptions}.
 */
export class TopicHub {
  readonly subscriptions: TopicSubscriptions;
  readonly #continuity: TopicContinuity;
  readonly #retry: BroadcastRetry;
  readonly #core: ServerCore;
  readonly #factory: MatsFactory;
  readonly #initiator: MatsInitiator;
  readonly #endpointId: string;

  constructor(core: ServerCore, factory: MatsFactory) {
    this.#core = core;
    this.#factory = factory;
    this.#endpointId = `MatsSocket.${core.options.instanceName}.publish`;
    this.#initiator = factory.getOrCreateInitiator(`MatsSocket.${core.options.instanceName}.publish`, {
      outbox: false,
    });
    this.subscriptions = new TopicSubscriptions(core, (topic, epoch, seq) =>
      this.#continuity.noteReplayed(topic, epoch, seq),
    );
    this.#continuity = new TopicContinuity({
      readReplay: (topicId, afterSeq, limit) => core.store.getTopicReplay(topicId, afterSeq, limit),
      deliver: (p) => this.subscriptions.deliver(p),
      hasSubscribers: (topicId) => this.subscriptions.hasSubscribers(topicId),
      replayBatch: core.store.options.topicReplayMaxPerTopic,
      logger: core.logger,
    });
    this.#retry = new BroadcastRetry((prepared) => this.#sendBroadcast(prepared), core.logger);
  }

  /** After the broker connection came back: the broadcasts whose sending failed meanwhile go again. */
  readonly #onConnected = (event: { reconnect: boolean }): void => {
    if (!event.reconnect || this.#core.isStopped()) return;
    this.#retry.retryNow();
  };

  /**
   * Once this node's consumers are back (its broadcast queue bound again): broadcasts sent while the connection was
   * down were lost for this node, so each topic with subscribers here reads what it missed from the replay log.
   * Not at `transport:connected`: a broadcast between that read and the queue's return would be missed again.
   */
  readonly #onConsuming = (event: { reconnect: boolean }): void => {
    if (!event.reconnect || this.#core.isStopped()) return;
    void this.#core.track(this.#continuity.catchUp());
  };

  /** Registers the broadcast subscription terminator, and follows broker reconnects (until {@link detach}). */
  register(): MatsEndpoint {
    this.#factory.options.transport.on('transport:connected', this.#onConnected);
    this.#factory.options.transport.on('transport:consuming', this.#onConsuming);
    return this.#factory
      .createInternalEndpoint(this.#endpointId, 'subscriptionTerminator', {
        concurrency: 1,
        interactiveConcurrency: 1,
        inbox: false,
        outbox: false,
      })
      .addOnlyStage((_ctx, _state, incoming) => {
        runOutsideStageContext(() => this.#continuity.receive(incoming as PreparedPublish));
      }, false);
  }

  /** Stops following broker reconnects (server stop). Idempotent. */
  detach(): void {
    this.#factory.options.transport.off('transport:connected', this.#onConnected);
    this.#factory.options.transport.off('transport:consuming', this.#onConsuming);
    this.#retry.stop();
    this.#continuity.stop();
  }

  /**
   * Publishes to every subscriber of `topicId` on every node. Inside a handler the publish is done when the
   * handling commits; inside a stage the log row joins the stage transaction and the broadcast is one of its
   * outgoing messages; otherwise the log row is committed first, then broadcast. If the log write fails nothing is
   * broadcast.
   */
  async publish(traceId: string, topicId: string, message: unknown): Promise<void> {
    this.#core.requireRunning();
    const collected: CollectedPublish = { topicId, traceId, message };
    const scope = currentHandlerScope();
    if (scope) {
      scope.publishes.push(collected);
      return;
    }
    const stage = currentStageContext();
    if (stage) {
      const trx = this.#core.options.topicReplayRetentionMs > 0 ? await stage.sql() : undefined;
      const prepared = await this.prepare(collected, trx);
      await stage.initiate((init) => this.#broadcastInit(init, [prepared]));
      return;
    }
    const prepared = await this.prepare(collected);
    await this.broadcast([prepared]);
  }

  /** Builds the PUB and appends it to the replay log (in `trx` when given). */
  async prepare(publish: CollectedPublish, trx?: Knex.Transaction): Promise<PreparedPublish> {
    const core = this.#core;
    const base = { t: 'PUB', eid: publish.topicId, tid: publish.traceId };
    const debug = serverInitiatedDebugAtCreation(core.options.nodeName, core.now());
    const message = publish.message === undefined ? undefined : JSON.stringify(publish.message);
    if (core.options.topicReplayRetentionMs <= 0) {
      const smid = newSmid();
      return {
        topicId: publish.topicId,
        smid,
        envelope: JSON.stringify({ ...base, smid, debug }),
        ...opt(message),
      };
    }
    // The smid depends on the sequence the append assigns, so the logged envelope carries no smid.
    const envelope = JSON.stringify({ ...base, debug });
    const { epoch, seq } = await core.store.appendTopicMessage(
      { topicId: publish.topicId, traceId: publish.traceId, envelope, messageText: message ?? null },
      trx,
    );
    const smid = `${epoch}.${seq}`;
    return {
      topicId: publish.topicId,
      smid,
      seq,
      envelope: JSON.stringify({ ...base, smid, debug }),
      ...opt(message),
    };
  }

  /**
   * Broadcasts prepared publishes to all nodes. A broadcast that fails (the broker down) is sent again later by
   * {@link BroadcastRetry}; the rejection still reaches the caller, whose publish is committed but not yet out.
   */
  async broadcast(prepared: readonly PreparedPublish[]): Promise<void> {
    if (prepared.length === 0) return;
    try {
      await this.#sendBroadcast(prepared);
    } catch (err) {
      if (prepared.some((p) => p.seq !== undefined)) this.#retry.failed(prepared);
      throw err;
    }
  }

  async #sendBroadcast(prepared: readonly PreparedPublish[]): Promise<void> {
    await runOutsideStageContext(() =>
      this.#initiator.initiate((init) => this.#broadcastInit(init, prepared)),
    );
  }

  #broadcastInit(init: MatsInitiate, prepared: readonly PreparedPublish[]): void {
    for (const p of prepared) {
      init.traceId(`MatsSocket.publish[${p.topicId}]`).from(this.#endpointId).to(this.#endpointId).publish(p);
    }
  }

  /** SUB (section 8.12 table, then BR-1 replay); resolves once the subscription is registered. */
  subscribe(conn: MatsSocketConnection, sub: C2SSub): Promise<void> {
    return this.subscriptions.subscribe(conn, sub);
  }
}

function opt(message: string | undefined): { message?: string } {
  return message === undefined ? {} : { message };
}
