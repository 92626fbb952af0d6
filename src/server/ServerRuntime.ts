import { ErrorCode, MatsSocketServerError } from '../errors.ts';
import type { Logger } from '../logging.ts';
import type { C2SSub } from '../protocol/envelopes.ts';
import type { ClusterStoreAndForward } from '../store/ClusterStoreAndForward.ts';
import type { StoredOutMessage } from '../store/storeTypes.ts';
import { NodeControl } from './cluster/NodeControl.ts';
import type { MatsSocketConnection } from './connection/MatsSocketConnection.ts';
import { createServerJobs } from './jobs/ServerJobs.ts';
import type { JobScheduler } from './jobs/JobScheduler.ts';
import { AckProcessor } from './inbound/AckProcessor.ts';
import { ForwardInitiator } from './inbound/ForwardInitiator.ts';
import { IncomingCommitter } from './inbound/IncomingCommitter.ts';
import { IncomingProcessor } from './inbound/IncomingProcessor.ts';
import { ReplyTerminatorInvoker } from './inbound/ReplyTerminatorInvoker.ts';
import { AfterCommit } from './messaging/AfterCommit.ts';
import { eagerWhenIdleOn } from './messaging/GroupCommitter.ts';
import type { MatsSocketEndpointDefinition } from './messaging/EndpointTypes.ts';
import { OutboxWriter } from './messaging/OutboxWriter.ts';
import { Forwarder } from './outbound/Forwarder.ts';
import { ReplyHandler } from './outbound/ReplyHandler.ts';
import { ServerMessaging } from './outbound/ServerMessaging.ts';
import type { ResolvedServerOptions } from './MatsSocketServerOptions.ts';
import type { ClientNack, InformationEnvelope, ServerCore } from './ServerCore.ts';
import { ServerEvents } from './ServerEvents.ts';
import { ServerMetrics } from './ServerMetrics.ts';
import { LocalSessionRegistry } from './session/LocalSessionRegistry.ts';
import { TopicHub } from './topics/TopicHub.ts';

/**
 * @internal The services of one node wired together: the {@link ServerCore} every part sees, and the parts
 * themselves. `MatsSocketServer` is the public facade over it.
 */
export class ServerRuntime implements ServerCore {
  readonly options: ResolvedServerOptions;
  readonly store: ClusterStoreAndForward;
  readonly logger: Logger;
  readonly events: ServerEvents;
  readonly metrics: ServerMetrics;
  readonly registry = new LocalSessionRegistry<MatsSocketConnection>();
  readonly endpoints = new Map<string, MatsSocketEndpointDefinition>();
  readonly outboxWriter: OutboxWriter;
  readonly nodeControl: NodeControl;
  readonly topics: TopicHub;
  readonly forwarder: Forwarder;
  readonly afterCommit: AfterCommit;
  readonly forwards: ForwardInitiator;
  readonly invoker: ReplyTerminatorInvoker;
  readonly committer: IncomingCommitter;
  readonly incoming: IncomingProcessor;
  readonly acks: AckProcessor;
  readonly replyHandler: ReplyHandler;
  readonly messaging: ServerMessaging;
  readonly jobs: JobScheduler;
  readonly #inFlight = new Set<Promise<unknown>>();
  #stopping = false;
  #stopped = false;

  constructor(options: ResolvedServerOptions) {
    this.options = options;
    this.store = options.store;
    this.logger = options.logger;
    this.events = new ServerEvents(this.logger);
    this.metrics = new ServerMetrics(options.metrics, options.nodeName);
    const factory = options.matsFactory;
    this.outboxWriter = new OutboxWriter(this.store, options.limits.maxSmidAttempts);
    this.nodeControl = new NodeControl(this, factory);
    this.topics = new TopicHub(this, factory);
    this.forwarder = new Forwarder(this);
    this.afterCommit = new AfterCommit(this, this.forwarder, this.nodeControl.pokes, this.topics);
    const replyHandlerId = `MatsSocket.${options.instanceName}.replyHandler`;
    this.forwards = new ForwardInitiator(factory, options.instanceName, replyHandlerId, () => this.now());
    this.invoker = new ReplyTerminatorInvoker(
      this,
      this.endpoints,
      this.forwards,
      this.outboxWriter,
      this.topics,
    );
    this.committer = new IncomingCommitter(this.store, this.forwards, this.outboxWriter, this.topics, {
      windowMs: options.timings.groupCommitWindowMs,
      maxItems: options.timings.groupCommitMaxItems,
      eagerWhenIdle: eagerWhenIdleOn(this.store.dialect),
    });
    this.incoming = new IncomingProcessor(
      this,
      this.endpoints,
      this.committer,
      this.invoker,
      this.afterCommit,
    );
    this.acks = new AckProcessor(this, this.invoker, this.afterCommit);
    this.replyHandler = new ReplyHandler(
      this,
      factory,
      this.endpoints,
      this.outboxWriter,
      this.topics,
      this.afterCommit,
    );
    this.messaging = new ServerMessaging(
      this,
      this.outboxWriter,
      this.nodeControl,
      this.afterCommit,
      this.endpoints,
    );
    this.jobs = createServerJobs(this, this.forwarder, this.invoker, this.afterCommit);
  }

  now(): number {
    return this.options.now();
  }

  isStopping(): boolean {
    return this.#stopping;
  }

  markStopping(): void {
    this.#stopping = true;
  }

  isStopped(): boolean {
    return this.#stopped;
  }

  requireRunning(): void {
    if (this.#stopped) {
      throw new MatsSocketServerError(ErrorCode.SERVER_STOPPED, 'The MatsSocket server is stopped');
    }
  }

  markStopped(): void {
    this.#stopped = true;
  }

  dispatchIncoming(
    connection: MatsSocketConnection,
    envelope: InformationEnvelope,
    receivedTs: number,
  ): Promise<void> {
    return this.incoming.dispatch(connection, envelope, receivedTs);
  }

  onClientAcks(
    connection: MatsSocketConnection,
    acks: readonly string[],
    nacks: readonly ClientNack[],
  ): Promise<void> {
    return this.acks.onClientAcks(connection, acks, nacks);
  }

  onClientAck2(connection: MatsSocketConnection, cmids: readonly string[]): Promise<void> {
    return this.acks.onClientAck2(connection, cmids);
  }

  pokeForwarder(sessionId: string, outbox?: StoredOutMessage[]): void {
    this.forwarder.poke(sessionId, outbox);
  }

  forwarderIdle(sessionId: string): Promise<void> {
    return this.forwarder.idle(sessionId);
  }

  subscribe(connection: MatsSocketConnection, sub: C2SSub): Promise<void> {
    return this.topics.subscribe(connection, sub);
  }

  unsubscribe(connection: MatsSocketConnection, topicId: string): void {
    this.topics.subscriptions.unsubscribe(connection, topicId);
  }

  dropSubscriptions(connection: MatsSocketConnection): void {
    this.topics.subscriptions.drop(connection);
  }

  sendCloseWs(nodeName: string, sessionId: string, connectionId: string): Promise<void> {
    return this.nodeControl.sendCloseWs(nodeName, sessionId, connectionId);
  }

  track<T>(work: Promise<T>): Promise<T> {
    this.#inFlight.add(work);
    void work.finally(() => this.#inFlight.delete(work)).catch(() => undefined);
    return work;
  }

  /** Waits until no tracked work is in flight, at most until `deadline` (epoch ms of `Date.now()`). */
  async drain(deadline: number): Promise<boolean> {
    while (this.#inFlight.size > 0) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise((r) => (timer = setTimeout(r, left)));
      await Promise.race([Promise.allSettled([...this.#inFlight]), timeout]);
      clearTimeout(timer);
    }
    return true;
  }
}
