import type { Knex } from 'knex';
import type { Logger } from '../logging.ts';
import { buildInitiation, type FlowFlags, type Sideloads } from './EnvelopeBuilder.ts';
import { toJson, type Channel, type KeepTrace } from './MatsEnvelope.ts';
import { MatsIllegalCallError } from './MatsErrors.ts';
import { derivedFlowId, derivedSuffix, messageIdOf, newFlowId } from './matsIds.ts';
import type { MatsInitiate } from './MatsInitiate.ts';
import type { MatsRuntime } from './MatsRuntime.ts';
import type { OutgoingCollector } from './OutgoingCollector.ts';

/** @internal The stage an initiation runs inside of (child flows). */
export interface InitiationParent {
  readonly stageId: string;
  readonly traceId: string;
  readonly matsMessageId: string;
  readonly totalCallNo: number;
  /** Deterministic timestamp for derived flow ids (the incoming message's send time). */
  readonly seedTimestamp: number;
  currentTraceProperties(): Record<string, unknown>;
  /** Throws (and marks the stage run refused) if a message with these counters would overflow. */
  checkOverflow(stackHeight: number, totalCallNo: number): void;
}

const KEEP_TRACES = new Set<string>(['FULL', 'COMPACT', 'MINIMAL']);

/** @internal The builder behind {@link MatsInitiate}; collects messages into a collector. */
export class InitiateBuilder implements MatsInitiate {
  readonly #runtime: MatsRuntime;
  readonly #collector: OutgoingCollector;
  readonly #parent: InitiationParent | undefined;
  readonly #sql: () => Promise<Knex.Transaction>;
  readonly #logger: Logger;
  #traceId: string | undefined;
  #from: string | undefined;
  #to: string | undefined;
  #replyTo: { channel: Channel; stoJson: string } | undefined;
  #nonPersistent = false;
  #ttlMs: number | undefined;
  #interactive = false;
  #noAudit = false;
  #keepTrace: KeepTrace = 'COMPACT';
  readonly #traceProperties: Record<string, unknown> = {};
  /** Sideloads for the next message; created on first use (most messages carry none). */
  #sideloads: Sideloads | undefined;
  #closed = false;

  constructor(
    runtime: MatsRuntime,
    collector: OutgoingCollector,
    parent: InitiationParent | undefined,
    sql: () => Promise<Knex.Transaction>,
    logger: Logger,
  ) {
    this.#runtime = runtime;
    this.#collector = collector;
    this.#parent = parent;
    this.#sql = sql;
    this.#logger = logger;
  }

  get log(): Logger {
    return this.#logger;
  }

  /** Called when the initiation lambda has returned: later terminal operations throw. */
  close(): void {
    this.#closed = true;
  }

  traceId(traceId: string): this {
    if (typeof traceId !== 'string') throw new MatsIllegalCallError('traceId must be a string');
    this.#traceId = traceId;
    return this;
  }

  from(initiatorId: string): this {
    if (typeof initiatorId !== 'string')
      throw new MatsIllegalCallError('from (initiatorId) must be a string');
    this.#from = initiatorId;
    return this;
  }

  to(endpointId: string): this {
    this.#to = this.#runtime.endpointId(endpointId);
    return this;
  }

  replyTo(endpointId: string, replySto: unknown): this {
    this.#replyTo = {
      channel: { id: this.#runtime.endpointId(endpointId), kind: 'queue' },
      stoJson: toJson(replySto),
    };
    return this;
  }

  replyToSubscription(endpointId: string, replySto: unknown): this {
    this.#replyTo = {
      channel: { id: this.#runtime.endpointId(endpointId), kind: 'topic' },
      stoJson: toJson(replySto),
    };
    return this;
  }

  nonPersistent(ttlMs?: number): this {
    this.#nonPersistent = true;
    if (ttlMs !== undefined) this.timeToLive(ttlMs);
    return this;
  }

  /** A TTL in ms; only allowed together with {@link nonPersistent} (checked when the message is sent). */
  timeToLive(ttlMs: number): this {
    if (!Number.isInteger(ttlMs) || ttlMs < 1)
      throw new MatsIllegalCallError(`TTL must be an integer >= 1 ms, was ${ttlMs}`);
    this.#ttlMs = ttlMs;
    return this;
  }

  interactive(): this {
    this.#interactive = true;
    return this;
  }

  noAudit(): this {
    this.#noAudit = true;
    return this;
  }

  keepTrace(keepTrace: KeepTrace): this {
    if (!KEEP_TRACES.has(keepTrace))
      throw new MatsIllegalCallError(`Unknown keepTrace '${String(keepTrace)}'`);
    this.#keepTrace = keepTrace;
    return this;
  }

  setTraceProperty(name: string, value: unknown): this {
    // Serialized now, so later changes to `value` are not seen.
    this.#traceProperties[name] = JSON.parse(toJson(value)) as unknown;
    return this;
  }

  addString(key: string, value: string): this {
    (this.#sideloads ??= { strings: new Map(), bytes: new Map() }).strings.set(key, String(value));
    return this;
  }

  addBytes(key: string, value: Uint8Array): this {
    (this.#sideloads ??= { strings: new Map(), bytes: new Map() }).bytes.set(key, Buffer.from(value));
    return this;
  }

  send(dto: unknown, initialTargetSto?: unknown): string {
    return this.#emit('SEND', dto, initialTargetSto);
  }

  request(dto: unknown, initialTargetSto?: unknown): string {
    return this.#emit('REQUEST', dto, initialTargetSto);
  }

  publish(dto: unknown, initialTargetSto?: unknown): string {
    return this.#emit('PUBLISH', dto, initialTargetSto);
  }

  sql(): Promise<Knex.Transaction> {
    return this.#sql();
  }

  #emit(type: 'SEND' | 'REQUEST' | 'PUBLISH', dto: unknown, initialTargetSto: unknown): string {
    if (this.#closed) throw new MatsIllegalCallError('The initiation has completed; initiate again');
    const parent = this.#parent;
    if (this.#traceId === undefined) throw new MatsIllegalCallError('initiate: traceId(...) is mandatory');
    const from = this.#from ?? parent?.stageId;
    if (from === undefined) throw new MatsIllegalCallError('initiate: from(...) is mandatory');
    if (this.#to === undefined) throw new MatsIllegalCallError('initiate: to(...) is mandatory');
    if (type === 'REQUEST' && !this.#replyTo)
      throw new MatsIllegalCallError('initiate: request needs replyTo(...)');
    if (this.#ttlMs !== undefined && !this.#nonPersistent) {
      throw new MatsIllegalCallError('initiate: a TTL is only allowed with nonPersistent()');
    }
    let traceId: string;
    if (parent) {
      traceId = this.#traceId.startsWith('!') ? this.#traceId.slice(1) : `${parent.traceId}|${this.#traceId}`;
      parent.checkOverflow(this.#replyTo ? 1 : 0, parent.totalCallNo + 1);
    } else {
      const modifier = this.#runtime.options.initiateTraceIdModifier;
      traceId = modifier ? modifier(this.#traceId) : this.#traceId;
    }
    const now = this.#runtime.now();
    const seed = this.#collector.nextSeed();
    const flowId = seed !== undefined && parent ? derivedFlowId(seed, parent.seedTimestamp) : newFlowId(now);
    const matsMessageId = messageIdOf(
      flowId,
      seed !== undefined ? derivedSuffix(seed) : this.#runtime.randomSuffix(),
    );
    const flags: FlowFlags = {
      interactive: this.#interactive,
      nonPersistent: this.#nonPersistent,
      noAudit: this.#noAudit,
      ttlMs: this.#nonPersistent ? this.#ttlMs : undefined,
    };
    const pending = buildInitiation({
      sender: this.#runtime.sender,
      type,
      flowId,
      matsMessageId,
      parentMessageId: parent?.matsMessageId,
      parentTotalCallNo: parent?.totalCallNo ?? 0,
      causeMessageId: parent?.matsMessageId,
      traceId,
      initiatorId: from,
      to: { id: this.#to, kind: type === 'PUBLISH' ? 'topic' : 'queue' },
      replyTo: this.#replyTo,
      initialTargetStoJson: initialTargetSto === undefined ? undefined : toJson(initialTargetSto),
      flags,
      keepTrace: this.#keepTrace,
      traceProperties: parent
        ? { ...parent.currentTraceProperties(), ...this.#traceProperties }
        : { ...this.#traceProperties },
      sideloads: this.#sideloads,
      dataJson: toJson(dto),
      now,
    });
    this.#collector.add(pending);
    this.#to = undefined;
    this.#replyTo = undefined;
    this.#sideloads = undefined;
    return matsMessageId;
  }
}
