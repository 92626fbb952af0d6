import {
  encodeEnvelope,
  toJson,
  type CallType,
  type Channel,
  type EnvelopeHead,
  type HistoryEntry,
  type KeepTrace,
  type MatsEnvelope,
  type SerializedState,
} from './MatsEnvelope.ts';
import { targetOf, type PendingMessage } from './MatsWire.ts';

/** Who is sending: this node. */
export interface SenderIdentity {
  appName: string;
  appVersion: string;
  nodeName: string;
  queuePrefix: string;
}

/** Flow flags; sticky for the whole flow. */
export interface FlowFlags {
  interactive: boolean;
  nonPersistent: boolean;
  noAudit: boolean;
  /** Per-hop TTL in ms (nonPersistent only). */
  ttlMs: number | undefined;
}

/** Sideloads of one outgoing message. */
export interface Sideloads {
  strings: Map<string, string>;
  bytes: Map<string, Uint8Array>;
}

/** The parameters of the first message of a new flow (SEND, REQUEST or PUBLISH). */
export interface InitiationParams {
  sender: SenderIdentity;
  type: 'SEND' | 'REQUEST' | 'PUBLISH';
  flowId: string;
  matsMessageId: string;
  /** Set when initiated inside a stage: the incoming message's id. */
  parentMessageId: string | undefined;
  /** Set when initiated inside a stage: the incoming message's total call number (child flows continue it). */
  parentTotalCallNo: number;
  causeMessageId: string | undefined;
  traceId: string;
  initiatorId: string;
  to: Channel;
  replyTo: { channel: Channel; stoJson: string } | undefined;
  initialTargetStoJson: string | undefined;
  flags: FlowFlags;
  keepTrace: KeepTrace;
  traceProperties: Record<string, unknown> | undefined;
  sideloads: Sideloads | undefined;
  dataJson: string;
  now: number;
}

/** Builds the first message of a flow. */
export function buildInitiation(p: InitiationParams): PendingMessage {
  const stack: Channel[] = p.replyTo ? [p.replyTo.channel] : [];
  const states: SerializedState[] = [];
  if (p.replyTo) states.push({ h: 0, json: p.replyTo.stoJson });
  if (p.initialTargetStoJson !== undefined) states.push({ h: stack.length, json: p.initialTargetStoJson });
  const head: EnvelopeHead = {
    v: 1,
    flowId: p.flowId,
    id: p.matsMessageId,
    ...(p.parentMessageId !== undefined && p.keepTrace !== 'MINIMAL' ? { parentId: p.parentMessageId } : {}),
    traceId: p.traceId,
    init: {
      app: p.sender.appName,
      ver: p.sender.appVersion,
      node: p.sender.nodeName,
      id: p.initiatorId,
      ts: p.now,
    },
    from: { app: p.sender.appName, ver: p.sender.appVersion, node: p.sender.nodeName, ts: p.now },
    ...flagFields(p.flags),
    callNo: 1,
    totalCallNo: p.parentTotalCallNo + 1,
    call: { type: p.type, from: p.initiatorId, to: p.to },
    stack,
    ...(p.traceProperties && Object.keys(p.traceProperties).length > 0 ? { tp: p.traceProperties } : {}),
    ...sideloadField(p.sideloads),
    ...(p.keepTrace !== 'COMPACT' ? { keepTrace: p.keepTrace } : {}),
  };
  return {
    matsMessageId: p.matsMessageId,
    causeMessageId: p.causeMessageId,
    target: targetOf(p.sender.queuePrefix, p.to, p.flags.interactive),
    json: encodeEnvelope(head, states, p.dataJson),
    callType: p.type,
    traceId: p.traceId,
    from: p.initiatorId,
    to: p.to.id,
    initiatingApp: p.sender.appName,
    initiatorId: p.initiatorId,
    appName: p.sender.appName,
    interactive: p.flags.interactive,
    nonPersistent: p.flags.nonPersistent,
    noAudit: p.flags.noAudit,
    ttlMs: p.flags.ttlMs,
  };
}

/** The incoming message a stage is processing, with its states serialized lazily (once) when forwarded. */
export class IncomingFlow {
  readonly envelope: MatsEnvelope;
  /** Stack height the stage runs at: the incoming reply stack's length. */
  readonly height: number;
  #lowerStates: SerializedState[] | undefined;

  constructor(envelope: MatsEnvelope) {
    this.envelope = envelope;
    this.height = envelope.stack.length;
  }

  /** The STO for the stage running at this height, or `undefined` (fresh invocation). */
  stateAtHeight(): unknown {
    for (const s of this.envelope.states) if (s.h === this.height) return s.sto;
    return undefined;
  }

  /** The caller states below this height (they travel on unchanged), serialized once. */
  lowerStates(): SerializedState[] {
    this.#lowerStates ??= this.envelope.states
      .filter((s) => s.h < this.height)
      .sort((a, b) => a.h - b.h)
      .map((s) => ({ h: s.h, json: toJson(s.sto) }));
    return this.#lowerStates;
  }
}

/** The parameters of a message produced by a stage (REQUEST, REPLY, NEXT, GOTO). */
export interface HopParams {
  sender: SenderIdentity;
  incoming: IncomingFlow;
  type: 'REQUEST' | 'REPLY' | 'NEXT' | 'GOTO';
  /** The stage producing the message. */
  fromStageId: string;
  matsMessageId: string;
  /** REQUEST, NEXT, GOTO: the target endpoint/stage id. Ignored for REPLY (the stack decides). */
  toId: string;
  /** REQUEST: where the reply lands (the next stage of this endpoint). */
  replyStageId: string | undefined;
  /** REQUEST, NEXT: the current STO, serialized at call time. */
  currentStoJson: string | undefined;
  /** REQUEST, GOTO: the STO for the target endpoint's fresh invocation. */
  initialTargetStoJson: string | undefined;
  traceProperties: Record<string, unknown> | undefined;
  sideloads: Sideloads | undefined;
  dataJson: string;
  now: number;
}

/** Builds a message produced by a stage; `undefined` for a REPLY with an empty stack (a silent no-op). */
export function buildHop(p: HopParams): PendingMessage | undefined {
  const inEnv = p.incoming.envelope;
  const h = p.incoming.height;
  let stack: Channel[];
  let states: SerializedState[];
  let to: Channel;
  switch (p.type) {
    case 'REQUEST':
      stack = [...inEnv.stack, { id: p.replyStageId!, kind: 'queue' }];
      states = [...p.incoming.lowerStates(), { h, json: p.currentStoJson ?? '{}' }];
      if (p.initialTargetStoJson !== undefined) states.push({ h: h + 1, json: p.initialTargetStoJson });
      to = { id: p.toId, kind: 'queue' };
      break;
    case 'REPLY':
      if (h === 0) return undefined;
      to = inEnv.stack[h - 1]!;
      stack = inEnv.stack.slice(0, h - 1);
      states = p.incoming.lowerStates();
      break;
    case 'NEXT':
      stack = inEnv.stack;
      states = [...p.incoming.lowerStates(), { h, json: p.currentStoJson ?? '{}' }];
      to = { id: p.toId, kind: 'queue' };
      break;
    case 'GOTO':
      stack = inEnv.stack;
      states = [...p.incoming.lowerStates()];
      if (p.initialTargetStoJson !== undefined) states.push({ h, json: p.initialTargetStoJson });
      to = { id: p.toId, kind: 'queue' };
      break;
  }
  const flags: FlowFlags = {
    interactive: inEnv.ia === true,
    nonPersistent: inEnv.np === true,
    noAudit: inEnv.na === true,
    ttlMs: inEnv.np === true ? inEnv.ttl : undefined,
  };
  const head: EnvelopeHead = {
    v: 1,
    flowId: inEnv.flowId,
    id: p.matsMessageId,
    ...(inEnv.keepTrace !== 'MINIMAL' ? { parentId: inEnv.id } : {}),
    traceId: inEnv.traceId,
    init: inEnv.init,
    from: { app: p.sender.appName, ver: p.sender.appVersion, node: p.sender.nodeName, ts: p.now },
    ...flagFields(flags),
    callNo: inEnv.callNo + 1,
    totalCallNo: inEnv.totalCallNo + 1,
    call: { type: p.type, from: p.fromStageId, to },
    stack,
    ...(p.traceProperties && Object.keys(p.traceProperties).length > 0 ? { tp: p.traceProperties } : {}),
    ...sideloadField(p.sideloads),
    ...(inEnv.keepTrace !== 'COMPACT' ? { keepTrace: inEnv.keepTrace } : {}),
    ...(inEnv.keepTrace === 'FULL' ? { history: [...(inEnv.history ?? []), historyEntry(inEnv)] } : {}),
  };
  return {
    matsMessageId: p.matsMessageId,
    causeMessageId: inEnv.id,
    target: targetOf(p.sender.queuePrefix, to, flags.interactive),
    json: encodeEnvelope(head, states, p.dataJson),
    callType: p.type,
    traceId: inEnv.traceId,
    from: p.fromStageId,
    to: to.id,
    initiatingApp: inEnv.init.app,
    initiatorId: inEnv.init.id,
    appName: p.sender.appName,
    interactive: flags.interactive,
    nonPersistent: flags.nonPersistent,
    noAudit: flags.noAudit,
    ttlMs: flags.ttlMs,
  };
}

/** Reply stack height and total call number of a message about to be produced (for overflow checks). */
export function hopCounters(
  incoming: IncomingFlow,
  type: HopParams['type'],
): { height: number; totalCallNo: number } {
  const h = incoming.height;
  const height = type === 'REQUEST' ? h + 1 : type === 'REPLY' ? Math.max(0, h - 1) : h;
  return { height, totalCallNo: incoming.envelope.totalCallNo + 1 };
}

function historyEntry(e: MatsEnvelope): HistoryEntry {
  return {
    type: e.call.type,
    id: e.id,
    from: e.call.from,
    to: e.call.to.id,
    app: e.from.app,
    node: e.from.node,
    ts: e.from.ts,
    data: e.data,
  };
}

function flagFields(flags: FlowFlags): Partial<Pick<MatsEnvelope, 'np' | 'ia' | 'na' | 'ttl'>> {
  const out: Partial<Pick<MatsEnvelope, 'np' | 'ia' | 'na' | 'ttl'>> = {};
  if (flags.nonPersistent) out.np = true;
  if (flags.interactive) out.ia = true;
  if (flags.noAudit) out.na = true;
  if (flags.nonPersistent && flags.ttlMs !== undefined) out.ttl = flags.ttlMs;
  return out;
}

function sideloadField(sideloads: Sideloads | undefined): Partial<Pick<MatsEnvelope, 'sl'>> {
  if (!sideloads || (sideloads.strings.size === 0 && sideloads.bytes.size === 0)) return {};
  const sl: NonNullable<MatsEnvelope['sl']> = {};
  if (sideloads.strings.size > 0) sl.s = Object.fromEntries(sideloads.strings);
  if (sideloads.bytes.size > 0) {
    sl.b = Object.fromEntries([...sideloads.bytes].map(([k, v]) => [k, Buffer.from(v).toString('base64')]));
  }
  return { sl };
}

/** Type guard helper for call types produced by stages. */
export function isHopType(type: CallType): type is HopParams['type'] {
  return type === 'REQUEST' || type === 'REPLY' || type === 'NEXT' || type === 'GOTO';
}
