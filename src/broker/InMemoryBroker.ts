import { ErrorCode, TransportError } from '../errors.ts';
import type { InMemoryChannel, QueueDeclareArgs } from './InMemoryChannel.ts';
import { InMemoryConnection } from './InMemoryConnection.ts';
import { InMemoryQueue, type ConsumerEntry, type StoredMessage } from './InMemoryQueue.ts';
import type { MessageProperties } from './Transport.ts';

/** A publish's confirm: `returned` is a mandatory publish no queue took (a return followed by an ack). */
export type PublishOutcome = 'ack' | 'nack' | 'returned';

/** The emulated broker policy for one queue (RabbitMQ: `delivery-limit` + `dead-letter-exchange`). */
export interface BackstopOptions {
  /** Returns to the queue allowed: a message is delivered `deliveryLimit + 1` times, then dead-lettered. */
  deliveryLimit: number;
  /** Queue receiving dead letters (expired, rejected without requeue, over the delivery limit). */
  deadLetterQueue: string;
}

/** A message taken out of a queue by {@link InMemoryBroker.drainQueue}. */
export interface DrainedMessage {
  body: Buffer;
  properties: MessageProperties;
  deliveryCount: number;
}

interface IdleWaiter {
  queues: readonly string[];
  resolve: () => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * The embedded message broker (docs/mats-semantics.md section 6): named FIFO queues with quorum-queue delivery counting,
 * one or more direct exchanges, connections with channels, asynchronous confirms and deliveries, and fault
 * injection for tests. One per process (tests make their own); nothing survives the process.
 *
 * Every delivery happens from a `setImmediate` batch, never in the call stack of a publish, ack or consume.
 */
export class InMemoryBroker {
  private readonly queues = new Map<string, InMemoryQueue>();
  /** exchange -> routing key -> bound queue names */
  private readonly exchanges = new Map<string, Map<string, Set<string>>>();
  private readonly connectionSet = new Set<InMemoryConnection>();
  private readonly backstops = new Map<string, BackstopOptions>();
  private readonly dirty = new Set<InMemoryQueue>();
  private readonly idleWaiters = new Set<IdleWaiter>();
  /** What blocked connections sent during the alarm, in order (see {@link whenReadable}). */
  private stalled: Array<() => void> = [];
  private available = true;
  private blockedReason: string | undefined;
  /** Connections that published during the current alarm. */
  private readonly blockedConnections = new Set<InMemoryConnection>();
  private nackNext = 0;
  private delayNext = 0;
  private delayMs = 0;
  private confirmsInFlight = 0;
  private scheduled = false;
  private serverNamed = 0;

  /** Opens a connection. Rejects with `TRANSPORT_UNAVAILABLE` while the broker is made unavailable. */
  async connect(name: string): Promise<InMemoryConnection> {
    await Promise.resolve();
    if (!this.available) {
      throw new TransportError(
        ErrorCode.TRANSPORT_UNAVAILABLE,
        `in-memory broker refused connection '${name}'`,
      );
    }
    const connection = new InMemoryConnection(this, name);
    this.connectionSet.add(connection);
    return connection;
  }

  /** The open connections. */
  get connections(): readonly InMemoryConnection[] {
    return [...this.connectionSet];
  }

  // ---- fault injection and inspection (for tests) -------------------------------------------------------------

  /**
   * Drops the matching connections as a crashed broker would: their channels close (unacked messages are requeued
   * with their delivery count + 1), exclusive queues vanish, unconfirmed publishes fail. Returns how many.
   */
  dropConnections(filter: (connection: InMemoryConnection) => boolean = () => true): number {
    const matching = [...this.connectionSet].filter(filter);
    for (const c of matching) {
      c.terminate(
        new TransportError(
          ErrorCode.TRANSPORT_UNAVAILABLE,
          `CONNECTION_FORCED - '${c.name}' dropped by the broker`,
        ),
      );
    }
    return matching.length;
  }

  /** While false, new connections are refused (the broker is "down"); existing ones are left alone. */
  setAvailable(available: boolean): void {
    this.available = available;
  }

  /**
   * Emulates a memory alarm as RabbitMQ raises one (measured on 3.10): a connection that publishes while it lasts
   * is blocked (`blocked` with the reason, once), and from then on the broker reads nothing more from it until the
   * alarm ends: its publishes go unconfirmed, its declares, consumes and acks wait. Connections that do not publish
   * (consumers) go on as before.
   */
  blockPublishing(reason = 'low on memory'): void {
    if (this.blockedReason !== undefined) return;
    this.blockedReason = reason;
  }

  /** Ends the alarm: blocked connections get `unblocked`, and what they sent meanwhile is processed in order. */
  unblockPublishing(): void {
    if (this.blockedReason === undefined) return;
    this.blockedReason = undefined;
    const blocked = [...this.blockedConnections];
    this.blockedConnections.clear();
    for (const c of blocked) if (c.open) c.emit('unblocked');
    const stalled = this.stalled;
    this.stalled = [];
    for (const run of stalled) run();
    this.notify();
  }

  /**
   * @internal Runs `op` now, or, while `connection` is blocked by the alarm, once the alarm ends (in the order the
   * operations came, as a blocked AMQP connection's unread frames are). A publish during the alarm blocks its
   * connection.
   */
  whenReadable(connection: InMemoryConnection, op: () => void, publishing = false): void {
    const reason = this.blockedReason;
    if (reason !== undefined && publishing && !this.blockedConnections.has(connection)) {
      this.blockedConnections.add(connection);
      setImmediate(() => {
        if (connection.open && this.blockedConnections.has(connection)) connection.emit('blocked', reason);
      });
    }
    if (this.blockedConnections.has(connection)) this.stalled.push(op);
    else op();
  }

  /** The next `count` publishes are nacked (and not enqueued). */
  nackNextConfirms(count: number): void {
    this.nackNext = count;
  }

  /** The next `count` confirms arrive `delayMs` late. */
  delayNextConfirms(count: number, delayMs: number): void {
    this.delayNext = count;
    this.delayMs = delayMs;
  }

  /** Sets (or with `undefined` removes) the emulated delivery-limit/dead-letter policy of a queue. */
  setBackstop(queue: string, backstop: BackstopOptions | undefined): void {
    if (backstop) this.backstops.set(queue, { ...backstop });
    else this.backstops.delete(queue);
  }

  hasQueue(name: string): boolean {
    return this.queues.has(name);
  }

  /** Ready messages in a queue (0 if it does not exist); expired messages at the head are dropped first. */
  queueDepth(name: string): number {
    const q = this.queues.get(name);
    if (!q) return 0;
    this.expireHead(q);
    return q.depth;
  }

  /** Delivered but unacked messages over all connections. */
  unackedCount(): number {
    let n = 0;
    for (const c of this.connectionSet) n += c.unackedCount;
    return n;
  }

  /** Takes up to `max` ready messages out of a queue (a get + ack), e.g. to inspect a dead-letter queue. */
  drainQueue(name: string, max = Number.POSITIVE_INFINITY): DrainedMessage[] {
    const q = this.queues.get(name);
    const out: DrainedMessage[] = [];
    if (!q) return out;
    while (out.length < max) {
      this.expireHead(q);
      const m = q.shift();
      if (!m) break;
      out.push({ body: m.body, properties: m.properties, deliveryCount: m.deliveryCount });
    }
    this.notify();
    return out;
  }

  /**
   * Resolves when no publish awaits its confirm, no delivery is unacked, no dispatch is pending and every queue
   * named in `queues` is empty. Rejects after `timeoutMs`.
   */
  waitIdle(queues: readonly string[] = [], timeoutMs = 10_000): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const waiter: IdleWaiter = {
        queues,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.idleWaiters.delete(waiter);
          reject(new Error(`in-memory broker not idle within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.idleWaiters.add(waiter);
      this.notify();
    });
  }

  // ---- used by connections and channels ----------------------------------------------------------------------

  /** @internal */
  declareQueue(name: string, args: QueueDeclareArgs, connection: InMemoryConnection): string {
    const exclusive = args.exclusive === true || name === '';
    const kind = exclusive ? 'classic' : (args.kind ?? 'quorum');
    const queueName = name === '' ? `amq.gen-${++this.serverNamed}` : name;
    const existing = this.queues.get(queueName);
    if (existing) {
      if (existing.kind !== kind || (existing.owner !== undefined) !== exclusive) {
        throw new TransportError(
          ErrorCode.TRANSPORT_PRECONDITION_FAILED,
          `PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue '${queueName}': received '${kind}' but current is '${existing.kind}'`,
        );
      }
      this.checkOwner(existing, connection);
      return queueName;
    }
    this.queues.set(
      queueName,
      new InMemoryQueue(queueName, kind, exclusive ? connection : undefined, args.autoDelete === true),
    );
    return queueName;
  }

  /** @internal */
  declareExchange(name: string): void {
    if (!this.exchanges.has(name)) this.exchanges.set(name, new Map());
  }

  /** @internal */
  bindQueue(queue: string, exchange: string, routingKey: string): void {
    const bindings = this.exchanges.get(exchange);
    if (!bindings)
      throw new TransportError(ErrorCode.TRANSPORT_CHANNEL_CLOSED, `NOT_FOUND - no exchange '${exchange}'`);
    if (!this.queues.has(queue))
      throw new TransportError(ErrorCode.TRANSPORT_CHANNEL_CLOSED, `NOT_FOUND - no queue '${queue}'`);
    let set = bindings.get(routingKey);
    if (!set) bindings.set(routingKey, (set = new Set()));
    set.add(queue);
  }

  /** @internal Deletes a queue: its consumers are cancelled by the server, its messages are gone. */
  deleteQueue(name: string): void {
    const q = this.queues.get(name);
    if (!q) return;
    this.queues.delete(name);
    for (const bindings of this.exchanges.values()) {
      for (const [key, set] of bindings) if (set.delete(name) && set.size === 0) bindings.delete(key);
    }
    q.clear();
    for (const entry of [...q.consumers]) entry.channel.serverCancel(entry);
    this.notify();
  }

  /** @internal Routes and enqueues one publish; `confirm` is always called asynchronously. */
  publish(
    channel: InMemoryChannel,
    exchange: string,
    routingKey: string,
    body: Buffer,
    properties: MessageProperties,
    mandatory: boolean,
    confirm: (outcome: PublishOutcome) => void,
  ): void {
    // Copied now, so the publisher may reuse its buffer and headers object at once.
    const stored = Buffer.from(body);
    const props: MessageProperties = { ...properties, headers: { ...properties.headers } };
    const run = (): void => {
      if (!channel.open) return;
      let outcome: PublishOutcome;
      if (this.nackNext > 0) {
        this.nackNext--;
        outcome = 'nack';
      } else {
        const targets = this.route(exchange, routingKey);
        for (const q of targets) this.enqueue(q, stored, props, exchange, routingKey);
        outcome = targets.length === 0 && mandatory ? 'returned' : 'ack';
      }
      this.confirmsInFlight++;
      const done = (): void => {
        this.confirmsInFlight--;
        confirm(outcome);
        this.notify();
      };
      if (this.delayNext > 0) {
        this.delayNext--;
        setTimeout(done, this.delayMs);
      } else {
        setImmediate(done);
      }
    };
    this.whenReadable(channel.connection, run, true);
  }

  /** @internal */
  addConsumer(queueName: string, partial: Omit<ConsumerEntry, 'queue' | 'unacked'>): ConsumerEntry {
    const q = this.queues.get(queueName);
    if (!q)
      throw new TransportError(ErrorCode.TRANSPORT_CHANNEL_CLOSED, `NOT_FOUND - no queue '${queueName}'`);
    this.checkOwner(q, partial.channel.connection);
    const entry: ConsumerEntry = { ...partial, queue: q, unacked: 0 };
    q.consumers.push(entry);
    this.markDirty(q);
    return entry;
  }

  /** @internal */
  removeConsumer(entry: ConsumerEntry): void {
    const q = entry.queue;
    q.removeConsumer(entry);
    if (q.autoDelete && q.consumers.length === 0 && this.queues.get(q.name) === q) this.deleteQueue(q.name);
  }

  /**
   * @internal Ends a delivery: `ack`; `requeue` (reject with requeue: back at the **tail**, count + 1); `return`
   * (its channel closed: back at the **head**, count + 1); `discard` (reject: dead-lettered if set up, else gone).
   * The two requeue positions are what RabbitMQ 3.10 quorum queues do (measured): a rejected message goes behind
   * the ready ones, a message of a closed channel keeps its place.
   */
  settle(
    consumer: ConsumerEntry,
    message: StoredMessage,
    op: 'ack' | 'requeue' | 'return' | 'discard',
  ): void {
    consumer.unacked--;
    const q = consumer.queue;
    const live = this.queues.get(q.name) === q;
    if (op === 'requeue' || op === 'return') {
      message.deliveryCount++;
      message.redelivered = true;
      const backstop = this.backstops.get(q.name);
      if (backstop && message.deliveryCount > backstop.deliveryLimit)
        this.deadLetter(q, message, 'delivery_limit');
      else if (live && op === 'return') q.unshift(message);
      else if (live) q.push(message);
    } else if (op === 'discard' && this.backstops.has(q.name)) {
      this.deadLetter(q, message, 'rejected');
    }
    if (live) this.markDirty(q);
    else this.notify();
  }

  /** @internal */
  connectionClosed(connection: InMemoryConnection): void {
    this.connectionSet.delete(connection);
    this.blockedConnections.delete(connection);
    for (const q of [...this.queues.values()]) if (q.owner === connection) this.deleteQueue(q.name);
    this.notify();
  }

  // ---- internals ------------------------------------------------------------------------------------------------

  private checkOwner(q: InMemoryQueue, connection: InMemoryConnection): void {
    if (q.owner !== undefined && q.owner !== connection) {
      throw new TransportError(
        ErrorCode.TRANSPORT_CHANNEL_CLOSED,
        `RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '${q.name}'`,
      );
    }
  }

  private route(exchange: string, routingKey: string): InMemoryQueue[] {
    if (exchange === '') {
      const q = this.queues.get(routingKey);
      return q ? [q] : [];
    }
    const names = this.exchanges.get(exchange)?.get(routingKey);
    if (!names) return [];
    const out: InMemoryQueue[] = [];
    for (const n of names) {
      const q = this.queues.get(n);
      if (q) out.push(q);
    }
    return out;
  }

  private enqueue(
    q: InMemoryQueue,
    body: Buffer,
    properties: MessageProperties,
    exchange: string,
    routingKey: string,
  ): void {
    q.push({
      body,
      properties,
      deliveryCount: 0,
      redelivered: false,
      expiresAt: properties.expiration === undefined ? undefined : Date.now() + properties.expiration,
      exchange,
      routingKey,
    });
    this.markDirty(q);
  }

  private deadLetter(
    q: InMemoryQueue,
    message: StoredMessage,
    reason: 'delivery_limit' | 'expired' | 'rejected',
  ): void {
    const target = this.queues.get(this.backstops.get(q.name)?.deadLetterQueue ?? '');
    if (!target) return; // as RabbitMQ: a dead-letter target that routes nowhere drops the message
    const headers = { ...message.properties.headers };
    let deaths: unknown[] = [];
    if (typeof headers['x-death'] === 'string') {
      try {
        deaths = JSON.parse(headers['x-death']) as unknown[];
      } catch {
        deaths = [];
      }
    }
    deaths.unshift({
      count: 1,
      reason,
      queue: q.name,
      time: Math.floor(Date.now() / 1000),
      exchange: message.exchange,
      'routing-keys': [message.routingKey],
    });
    headers['x-death'] = JSON.stringify(deaths);
    headers['x-first-death-reason'] ??= reason;
    headers['x-first-death-queue'] ??= q.name;
    headers['x-first-death-exchange'] ??= message.exchange;
    // RabbitMQ removes the per-message TTL from dead letters so they do not expire again.
    const { expiration: _expiration, ...rest } = message.properties;
    this.enqueue(target, message.body, { ...rest, headers }, '', target.name);
  }

  private expireHead(q: InMemoryQueue): void {
    const now = Date.now();
    for (let m = q.peek(); m && m.expiresAt !== undefined && m.expiresAt <= now; m = q.peek()) {
      q.shift();
      if (this.backstops.has(q.name)) this.deadLetter(q, m, 'expired');
    }
  }

  private markDirty(q: InMemoryQueue): void {
    this.dirty.add(q);
    this.notify();
  }

  private notify(): void {
    if (this.scheduled || (this.dirty.size === 0 && this.idleWaiters.size === 0)) return;
    this.scheduled = true;
    setImmediate(() => this.dispatch());
  }

  private dispatch(): void {
    this.scheduled = false;
    const queues = [...this.dirty];
    this.dirty.clear();
    for (const q of queues) {
      if (this.queues.get(q.name) !== q) continue;
      for (;;) {
        this.expireHead(q);
        if (q.depth === 0) break;
        const consumer = q.pickConsumer();
        if (!consumer) break;
        consumer.channel.deliver(consumer, q.shift()!);
      }
    }
    if (this.idleWaiters.size > 0) this.checkIdle();
  }

  private checkIdle(): void {
    if (this.scheduled || this.confirmsInFlight > 0 || this.stalled.length > 0 || this.unackedCount() > 0)
      return;
    for (const w of [...this.idleWaiters]) {
      if (w.queues.every((name) => this.queueDepth(name) === 0)) {
        this.idleWaiters.delete(w);
        clearTimeout(w.timer);
        w.resolve();
      }
    }
  }
}
