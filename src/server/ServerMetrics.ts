import type { Counter, Gauge, Histogram, Metrics } from '../metrics/Metrics.ts';

/** The `limit` label of `matssocket_connection_limit_trips_total`. */
export type ConnectionLimit =
  | 'origin'
  | 'unauthenticated_total'
  | 'unauthenticated_per_ip'
  | 'pre_hello_bytes'
  | 'pre_hello_compressed_bytes'
  | 'ping_id_length'
  | 'send_buffer'
  | 'send_drain'
  | 'inbound_queue'
  | 'inbound_rate';

/**
 * The server's instruments, all with low-cardinality labels (`node` and a message type or reason at most):
 * messages in/out by type, sessions established/removed (and a live-sessions gauge), outbox deliveries, dead letters,
 * request round trip, poke latency, outbox depth.
 */
export class ServerMetrics {
  readonly #node: string;
  readonly #messagesIn: Counter;
  readonly #messagesOut: Counter;
  readonly #established: Counter;
  readonly #removed: Counter;
  readonly #deliveries: Counter;
  readonly #deadLetters: Counter;
  readonly #pokeLatency: Histogram;
  readonly #roundTrip: Histogram;
  readonly #liveSessions: Gauge;
  readonly #outboxDepth: Gauge;
  readonly #limitTrips: Counter;
  readonly #inboundLimits: Counter;
  readonly #replies: Counter;

  constructor(metrics: Metrics, nodeName: string) {
    this.#node = nodeName;
    const m = metrics;
    this.#messagesIn = m.counter({
      name: 'matssocket_messages_received_total',
      help: 'Envelopes received from clients, by type',
      labelNames: ['node', 'type'],
    });
    this.#messagesOut = m.counter({
      name: 'matssocket_messages_sent_total',
      help: 'Envelopes sent to clients, by type',
      labelNames: ['node', 'type'],
    });
    this.#established = m.counter({
      name: 'matssocket_sessions_established_total',
      help: 'Sessions established on this node (NEW or RECONNECT)',
      labelNames: ['node', 'type'],
    });
    this.#removed = m.counter({
      name: 'matssocket_sessions_removed_total',
      help: 'Sessions that left this node (CLOSE, DEREGISTER, TIMEOUT)',
      labelNames: ['node', 'type'],
    });
    this.#deliveries = m.counter({
      name: 'matssocket_outbox_deliveries_total',
      help: 'Outbox messages written to client sockets',
      labelNames: ['node'],
    });
    this.#deadLetters = m.counter({
      name: 'matssocket_dead_letters_total',
      help: 'Outbox messages moved to the dead-letter table, by reason',
      labelNames: ['node', 'reason'],
    });
    this.#pokeLatency = m.histogram({
      name: 'matssocket_poke_latency_seconds',
      help: 'From sending a poke to the holding node receiving it',
      labelNames: ['node'],
    });
    this.#roundTrip = m.histogram({
      name: 'matssocket_request_round_trip_seconds',
      help: 'From receiving a client REQUEST to writing its RESOLVE/REJECT to the client, on the writing node',
      labelNames: ['node'],
    });
    this.#liveSessions = m.gauge({
      name: 'matssocket_sessions_live',
      help: 'Sessions held by this node',
      labelNames: ['node'],
    });
    this.#outboxDepth = m.gauge({
      name: 'matssocket_outbox_depth',
      help: 'Unattempted outbox messages of the sessions held by this node',
      labelNames: ['node'],
    });
    this.#limitTrips = m.counter({
      name: 'matssocket_connection_limit_trips_total',
      help: 'Connections refused, closed, terminated or paused (inbound_queue, inbound_rate) by a per-connection resource limit, by limit',
      labelNames: ['node', 'limit'],
    });
    this.#replies = m.counter({
      name: 'matssocket_replies_total',
      help:
        'Backend replies stored by this node, by where their session was: held by this node (written from memory) ' +
        "or not (poked to the holding node, or kept for the session's return); see nodeReplyQueues",
      labelNames: ['node', 'session'],
    });
    this.#inboundLimits = m.counter({
      name: 'matssocket_inbound_limit_total',
      help: 'Client input that tripped a limit (closed, NACKed, clamped, or made to wait), by limit',
      labelNames: ['node', 'limit'],
    });
  }

  messageIn(type: string): void {
    this.#messagesIn.inc({ node: this.#node, type });
  }

  messageOut(type: string, count = 1): void {
    this.#messagesOut.inc({ node: this.#node, type }, count);
  }

  sessionEstablished(type: string, live: number): void {
    this.#established.inc({ node: this.#node, type });
    this.#liveSessions.set({ node: this.#node }, live);
  }

  sessionRemoved(type: string, live: number): void {
    this.#removed.inc({ node: this.#node, type });
    this.#liveSessions.set({ node: this.#node }, live);
  }

  delivered(count: number): void {
    this.#deliveries.inc({ node: this.#node }, count);
  }

  deadLettered(reason: string, count: number): void {
    this.#deadLetters.inc({ node: this.#node, reason }, count);
  }

  /** A backend reply stored; `heldHere`: its session's connection is on this node. */
  replyStored(heldHere: boolean): void {
    this.#replies.inc({ node: this.#node, session: heldHere ? 'held_here' : 'elsewhere' });
  }

  pokeLatency(seconds: number): void {
    this.#pokeLatency.observe({ node: this.#node }, Math.max(0, seconds));
  }

  /**
   * A reply written to the client, `seconds` after its REQUEST came in (the receiving node's clock: a reply written by
   * another node after a reconnect includes the clock difference).
   */
  requestRoundTrip(seconds: number): void {
    this.#roundTrip.observe({ node: this.#node }, Math.max(0, seconds));
  }

  /** A connection limit tripped (see {@link ConnectionLimit}). */
  limitTripped(limit: ConnectionLimit): void {
    this.#limitTrips.inc({ node: this.#node, limit });
  }

  outboxDepth(depth: number): void {
    this.#outboxDepth.set({ node: this.#node }, depth);
  }

  /** A client input limit tripped; `limit` is the option's name (low cardinality). */
  inboundLimit(limit: string, count = 1): void {
    this.#inboundLimits.inc({ node: this.#node, limit }, count);
  }
}
