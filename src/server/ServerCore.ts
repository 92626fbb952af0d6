import type { Logger } from '../logging.ts';
import type { C2SReply, C2SRequest, C2SSend, C2SSub } from '../protocol/envelopes.ts';
import type { ClusterStoreAndForward } from '../store/ClusterStoreAndForward.ts';
import type { StoredOutMessage } from '../store/storeTypes.ts';
import type { MatsSocketConnection } from './connection/MatsSocketConnection.ts';
import type { ResolvedServerOptions } from './MatsSocketServerOptions.ts';
import type { ServerEvents } from './ServerEvents.ts';
import type { ServerMetrics } from './ServerMetrics.ts';
import type { LocalSessionRegistry } from './session/LocalSessionRegistry.ts';

/** An information-bearing client envelope. */
export type InformationEnvelope = C2SSend | C2SRequest | C2SReply;

/** A client NACK of one server message. */
export interface ClientNack {
  smid: string;
  desc: string | undefined;
}

/**
 * @internal The services of one server node that connections, the forwarder, the processors and the jobs share.
 * Built by `MatsSocketServer`; each field is implemented in its own module.
 */
export interface ServerCore {
  readonly options: ResolvedServerOptions;
  readonly store: ClusterStoreAndForward;
  readonly logger: Logger;
  readonly events: ServerEvents;
  readonly metrics: ServerMetrics;
  readonly registry: LocalSessionRegistry<MatsSocketConnection>;
  now(): number;
  /** True once `stop()` began: new connections get 1012. */
  isStopping(): boolean;
  /** True once `stop()` completed: the server API refuses with `SERVER_STOPPED`. */
  isStopped(): boolean;
  /** Throws `SERVER_STOPPED` once `stop()` completed: the guard of the server-initiated API. */
  requireRunning(): void;
  /**
   * Hands an information-bearing envelope to asynchronous handling (docs/protocol.md 7.2 step 14). Resolves when it
   * was admitted (the in-flight limits); the connection awaits it before the next, which is its backpressure.
   */
  dispatchIncoming(
    connection: MatsSocketConnection,
    envelope: InformationEnvelope,
    receivedTs: number,
  ): Promise<void>;
  /**
   * Client ACK/NACK of server messages: complete the outbox rows, then ACK2 (7.2 step 5). Resolves when the ids
   * were admitted (the connection's ack-id limit), not when they are settled.
   */
  onClientAcks(
    connection: MatsSocketConnection,
    acks: readonly string[],
    nacks: readonly ClientNack[],
  ): Promise<void>;
  /** Client ACK2: delete the inbox rows (7.2 step 6). Resolves when admitted, as {@link onClientAcks}. */
  onClientAck2(connection: MatsSocketConnection, cmids: readonly string[]): Promise<void>;
  /** Runs (or re-runs) the forwarder of a local session; `outbox`: its rows just read (a resume), for the first round. */
  pokeForwarder(sessionId: string, outbox?: StoredOutMessage[]): void;
  /** Resolves when no forward round of the session is running. */
  forwarderIdle(sessionId: string): Promise<void>;
  /** SUB (synchronous registration, section 8.12 / BR-1); may close the connection. */
  subscribe(connection: MatsSocketConnection, sub: C2SSub): Promise<void>;
  unsubscribe(connection: MatsSocketConnection, topicId: string): void;
  /** The connection is going away: drop its subscriptions. */
  dropSubscriptions(connection: MatsSocketConnection): void;
  /** Tells another node to close its connection `connectionId` of `sessionId` with 4003 (remote takeover). */
  sendCloseWs(nodeName: string, sessionId: string, connectionId: string): Promise<void>;
  /** Tracks in-flight work so `stop()` can let it finish within the grace period. */
  track<T>(work: Promise<T>): Promise<T>;
}
