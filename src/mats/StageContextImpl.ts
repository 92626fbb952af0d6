import type { Knex } from 'knex';
import type { Logger } from '../logging.ts';
import type { AmbientSlot, AmbientStageContext } from './ambientContext.ts';
import {
  buildHop,
  hopCounters,
  type HopParams,
  type IncomingFlow,
  type Sideloads,
} from './EnvelopeBuilder.ts';
import { InitiateBuilder, type InitiationParent } from './InitiateBuilder.ts';
import type { LazyTransaction } from './LazyTransaction.ts';
import { toJson, type CallType } from './MatsEnvelope.ts';
import { MatsIllegalCallError, MatsRefuseMessageError } from './MatsErrors.ts';
import type { MatsInitiate } from './MatsInitiate.ts';
import { messageIdOf } from './matsIds.ts';
import type { MatsRuntime } from './MatsRuntime.ts';
import type { OutgoingCollector } from './OutgoingCollector.ts';
import type { StageDefinition } from './StageDefinition.ts';

/** @internal What the stages of one run (a delivery plus its nextDirect chain) share. */
export interface StageRun {
  readonly runtime: MatsRuntime;
  readonly incoming: IncomingFlow;
  readonly collector: OutgoingCollector;
  readonly tx: LazyTransaction;
  readonly deliveryAttempt: number;
  readonly brokerMessageId: string | undefined;
  /** Trace properties: the incoming ones plus those set in this run (shared along nextDirect). */
  readonly traceProperties: Record<string, unknown>;
  /** Set when an outgoing message would overflow the stack or call limits: the run is refused. */
  overflow: MatsRefuseMessageError | undefined;
}

type Terminal = 'reply' | 'next' | 'nextDirect' | 'goTo';

/** @internal The {@link StageContext} of one stage in one run. */
export class StageContextImpl implements AmbientStageContext, InitiationParent {
  readonly #run: StageRun;
  readonly #stage: StageDefinition;
  readonly #state: unknown;
  readonly #incomingSideloads: Sideloads | undefined;
  /** Sideloads for the next message; created on first use (most messages carry none). */
  #sideloads: Sideloads | undefined;
  #terminal: Terminal | undefined;
  #requests = 0;
  #nextDirect: { dto: unknown } | undefined;
  #active = true;
  #log: Logger | undefined;
  /** @internal What the AsyncLocalStorage carries while the lambda runs; emptied by {@link deactivate}. */
  readonly ambientSlot: AmbientSlot = { current: this };

  constructor(run: StageRun, stage: StageDefinition, state: unknown, carriedSideloads?: Sideloads) {
    this.#run = run;
    this.#stage = stage;
    this.#state = state;
    this.#incomingSideloads = carriedSideloads;
  }

  get active(): boolean {
    return this.#active;
  }

  /** @internal Marks the lambda as finished: ambient lookups and further operations stop working. */
  deactivate(): void {
    this.#active = false;
    this.ambientSlot.current = undefined;
  }

  /** @internal The pending nextDirect call, with the sideloads it carries. */
  get nextDirectCall(): { dto: unknown; sideloads: Sideloads } | undefined {
    if (!this.#nextDirect) return undefined;
    return {
      dto: this.#nextDirect.dto,
      sideloads: this.#sideloads ?? { strings: new Map(), bytes: new Map() },
    };
  }

  /** @internal True if reply, next, nextDirect or goTo was called. */
  get hasTerminal(): boolean {
    return this.#terminal !== undefined;
  }

  get endpointId(): string {
    return this.#stage.endpointId;
  }
  get stageId(): string {
    return this.#stage.stageId;
  }
  get stageIndex(): number {
    return this.#stage.index;
  }
  get traceId(): string {
    return this.#run.incoming.envelope.traceId;
  }
  get flowId(): string {
    return this.#run.incoming.envelope.flowId;
  }
  get matsMessageId(): string {
    return this.#run.incoming.envelope.id;
  }
  get brokerMessageId(): string | undefined {
    return this.#run.brokerMessageId;
  }
  get callType(): CallType {
    return this.#run.incoming.envelope.call.type;
  }
  get fromStageId(): string {
    return this.#run.incoming.envelope.call.from;
  }
  get fromAppName(): string {
    return this.#run.incoming.envelope.from.app;
  }
  get fromAppVersion(): string {
    return this.#run.incoming.envelope.from.ver;
  }
  get fromNodeName(): string {
    return this.#run.incoming.envelope.from.node;
  }
  get fromTimestamp(): number {
    return this.#run.incoming.envelope.from.ts;
  }
  get initiatorId(): string {
    return this.#run.incoming.envelope.init.id;
  }
  get initiatingAppName(): string {
    return this.#run.incoming.envelope.init.app;
  }
  get initiatingAppVersion(): string {
    return this.#run.incoming.envelope.init.ver;
  }
  get initiatingNodeName(): string {
    return this.#run.incoming.envelope.init.node;
  }
  get initiatingTimestamp(): number {
    return this.#run.incoming.envelope.init.ts;
  }
  get isInteractive(): boolean {
    return this.#run.incoming.envelope.ia === true;
  }
  get isNonPersistent(): boolean {
    return this.#run.incoming.envelope.np === true;
  }
  get isNoAudit(): boolean {
    return this.#run.incoming.envelope.na === true;
  }
  get deliveryAttempt(): number {
    return this.#run.deliveryAttempt;
  }
  get stackHeight(): number {
    return this.#run.incoming.height;
  }
  get totalCallNo(): number {
    return this.#run.incoming.envelope.totalCallNo;
  }
  get seedTimestamp(): number {
    return this.#run.incoming.envelope.from.ts;
  }
  get log(): Logger {
    this.#log ??= this.#stage.logger.child({ traceId: this.traceId, matsMessageId: this.matsMessageId });
    return this.#log;
  }

  request(endpointId: string, dto: unknown, initialTargetSto?: unknown): string {
    this.#checkActive('request');
    if (this.#terminal)
      throw new MatsIllegalCallError(`request after ${this.#terminal} in stage ${this.stageId}`);
    const next = this.#stage.next;
    if (!next) {
      throw new MatsIllegalCallError(
        `request in ${this.stageId}: the last stage has no next stage for the reply`,
      );
    }
    const to = this.#run.runtime.endpointId(endpointId);
    this.#requests++;
    return this.#emit('REQUEST', to, dto, next.stageId, toJson(this.#state), initialTargetSto)!;
  }

  reply(dto: unknown): string | undefined {
    this.#setTerminal('reply');
    return this.#emit('REPLY', '', dto, undefined, undefined, undefined);
  }

  next(dto: unknown): string {
    const next = this.#requireNext('next');
    this.#setTerminal('next');
    return this.#emit('NEXT', next.stageId, dto, undefined, toJson(this.#state), undefined)!;
  }

  nextDirect(dto: unknown): void {
    this.#requireNext('nextDirect');
    this.#setTerminal('nextDirect');
    this.#nextDirect = { dto };
  }

  goTo(endpointId: string, dto: unknown, initialTargetSto?: unknown): string {
    const to = this.#run.runtime.endpointId(endpointId);
    this.#setTerminal('goTo');
    return this.#emit('GOTO', to, dto, undefined, undefined, initialTargetSto)!;
  }

  async initiate(fn: (init: MatsInitiate) => unknown): Promise<void> {
    await this.initiateJoined(fn);
  }

  /** @internal Runs an initiation joined to this stage; resolves with the ids of the messages it produced. */
  async initiateJoined(fn: (init: MatsInitiate) => unknown): Promise<string[]> {
    this.#checkActive('initiate');
    const collector = this.#run.collector;
    const before = collector.messages.length;
    const builder = new InitiateBuilder(this.#run.runtime, collector, this, () => this.sql(), this.log);
    try {
      await fn(builder);
    } finally {
      builder.close();
    }
    return collector.messages.slice(before).map((m) => m.matsMessageId);
  }

  doAfterCommit(fn: () => unknown): void {
    if (typeof fn !== 'function') throw new MatsIllegalCallError('doAfterCommit needs a function');
    this.#run.collector.setAfterCommit(fn);
  }

  addString(key: string, value: string): void {
    (this.#sideloads ??= { strings: new Map(), bytes: new Map() }).strings.set(key, String(value));
  }

  addBytes(key: string, value: Uint8Array): void {
    (this.#sideloads ??= { strings: new Map(), bytes: new Map() }).bytes.set(key, Buffer.from(value));
  }

  getString(key: string): string | undefined {
    if (this.#incomingSideloads) return this.#incomingSideloads.strings.get(key);
    return this.#run.incoming.envelope.sl?.s?.[key];
  }

  getBytes(key: string): Buffer | undefined {
    if (this.#incomingSideloads) {
      const b = this.#incomingSideloads.bytes.get(key);
      return b === undefined ? undefined : Buffer.from(b);
    }
    const b64 = this.#run.incoming.envelope.sl?.b?.[key];
    return b64 === undefined ? undefined : Buffer.from(b64, 'base64');
  }

  getStringKeys(): string[] {
    if (this.#incomingSideloads) return [...this.#incomingSideloads.strings.keys()];
    return Object.keys(this.#run.incoming.envelope.sl?.s ?? {});
  }

  getBytesKeys(): string[] {
    if (this.#incomingSideloads) return [...this.#incomingSideloads.bytes.keys()];
    return Object.keys(this.#run.incoming.envelope.sl?.b ?? {});
  }

  setTraceProperty(name: string, value: unknown): void {
    this.#run.traceProperties[name] = JSON.parse(toJson(value)) as unknown;
  }

  getTraceProperty<T = unknown>(name: string): T | undefined {
    return this.#run.traceProperties[name] as T | undefined;
  }

  currentTraceProperties(): Record<string, unknown> {
    return { ...this.#run.traceProperties };
  }

  sql(): Promise<Knex.Transaction> {
    return this.#run.tx.get();
  }

  /** @internal True if `trx` is this stage's transaction (or a savepoint in it). */
  ownsTransaction(trx: Knex.Transaction): boolean {
    return this.#run.tx.contains(trx);
  }

  getAttribute(name: 'sql'): Promise<Knex.Transaction> {
    if (name !== 'sql')
      return Promise.reject(new MatsIllegalCallError(`Unknown stage attribute '${String(name)}'`));
    return this.sql();
  }

  checkOverflow(stackHeight: number, totalCallNo: number): void {
    const { maxStackHeight, maxTotalCallNumber } = this.#run.runtime.options;
    if (stackHeight > maxStackHeight || totalCallNo > maxTotalCallNumber) {
      const error = new MatsRefuseMessageError(
        `Overflow in stage ${this.stageId}: an outgoing message would have reply stack height ${stackHeight} ` +
          `(max ${maxStackHeight}) and total call number ${totalCallNo} (max ${maxTotalCallNumber})`,
      );
      // Remembered on the run, so catching the error in the lambda cannot prevent the refusal.
      this.#run.overflow ??= error;
      throw error;
    }
  }

  #emit(
    type: HopParams['type'],
    toId: string,
    dto: unknown,
    replyStageId: string | undefined,
    currentStoJson: string | undefined,
    initialTargetSto: unknown,
  ): string | undefined {
    this.#checkActive(type.toLowerCase());
    const counters = hopCounters(this.#run.incoming, type);
    if (type !== 'REPLY' || this.#run.incoming.height > 0)
      this.checkOverflow(counters.height, counters.totalCallNo);
    const runtime = this.#run.runtime;
    const matsMessageId = messageIdOf(
      this.flowId,
      this.#run.collector.nextSuffix(() => runtime.randomSuffix()),
    );
    const pending = buildHop({
      sender: runtime.sender,
      incoming: this.#run.incoming,
      type,
      fromStageId: this.stageId,
      matsMessageId,
      toId,
      replyStageId,
      currentStoJson,
      initialTargetStoJson: initialTargetSto === undefined ? undefined : toJson(initialTargetSto),
      traceProperties: this.#run.traceProperties,
      sideloads: this.#sideloads,
      dataJson: toJson(dto),
      now: runtime.now(),
    });
    if (!pending) return undefined;
    this.#run.collector.add(pending);
    this.#sideloads = undefined;
    return matsMessageId;
  }

  #requireNext(op: string): StageDefinition {
    const next = this.#stage.next;
    if (!next) throw new MatsIllegalCallError(`${op} in ${this.stageId}: this is the endpoint's last stage`);
    return next;
  }

  #setTerminal(op: Terminal): void {
    this.#checkActive(op);
    if (this.#terminal || this.#requests > 0) {
      const previous = this.#terminal ?? 'request';
      throw new MatsIllegalCallError(`Illegal combination in stage ${this.stageId}: ${op} after ${previous}`);
    }
    this.#terminal = op;
  }

  #checkActive(op: string): void {
    if (!this.#active) {
      throw new MatsIllegalCallError(
        `${op} on the context of stage ${this.stageId} after its lambda returned`,
      );
    }
  }
}
