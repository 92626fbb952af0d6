import type { C2SSub } from '../../protocol/envelopes.ts';
import type { MatsSocketConnection } from '../connection/MatsSocketConnection.ts';
import type { ServerCore } from '../ServerCore.ts';
import { fromLogged, pubEnvelope, type PreparedPublish } from './PreparedPublish.ts';

/** One subscription of one connection. While the replay lookup runs, live PUBs are buffered (BR-1 step 1). */
interface Subscription {
  buffer: PreparedPublish[] | undefined;
}

/** Parses a BR-1 PUB smid `<epoch>.<seq>`. */
export function parseReplaySmid(smid: string): { epoch: string; seq: number } | undefined {
  const dot = smid.lastIndexOf('.');
  if (dot <= 0) return undefined;
  const seq = Number(smid.slice(dot + 1));
  if (!Number.isSafeInteger(seq) || seq < 0) return undefined;
  return { epoch: smid.slice(0, dot), seq };
}

/**
 * The in-memory subscriptions of this node's connections (docs/protocol.md 8.12): SUB checks in the table's order,
 * UNSUB, local delivery of PUBs (10 ms coalescing, debug per section 5 at write time) and the BR-1 replay.
 */
export class TopicSubscriptions {
  readonly #core: ServerCore;
  readonly #onReplayed: ((topic: string, epoch: string, seq: number) => void) | undefined;
  readonly #byConnection = new Map<MatsSocketConnection, Map<string, Subscription>>();
  readonly #byTopic = new Map<string, Set<MatsSocketConnection>>();

  constructor(core: ServerCore, onReplayed?: (topic: string, epoch: string, seq: number) => void) {
    this.#core = core;
    this.#onReplayed = onReplayed;
  }

  /** Whether any connection of this node subscribes to the topic. */
  hasSubscribers(topic: string): boolean {
    return (this.#byTopic.get(topic)?.size ?? 0) > 0;
  }

  /** The topics a connection subscribes to, sorted. */
  topicsOf(conn: MatsSocketConnection): string[] {
    return [...(this.#byConnection.get(conn)?.keys() ?? [])].sort();
  }

  async subscribe(conn: MatsSocketConnection, sub: C2SSub): Promise<void> {
    const core = this.#core;
    const limits = core.options.limits;
    const topic = sub.eid;
    const subs = this.#byConnection.get(conn);
    if (subs?.has(topic)) {
      conn.close(4004, `Double SUB for topic '${topic.slice(0, 64)}'`);
      return;
    }
    if ([...topic].length > limits.maxTopicIdLength) {
      core.metrics.inboundLimit('maxTopicIdLength');
      conn.close(1008, `Topic id longer than ${limits.maxTopicIdLength} characters`);
      return;
    }
    if ((subs?.size ?? 0) >= limits.maxTopicsPerConnection) {
      core.metrics.inboundLimit('maxTopicsPerConnection');
      conn.close(4004, `Too many topics: at most ${limits.maxTopicsPerConnection} per connection`);
      return;
    }
    let authorized: boolean;
    try {
      authorized = conn.plugin.authorizeUserForTopic
        ? await conn.plugin.authorizeUserForTopic(conn.auth, topic)
        : true;
    } catch (err) {
      conn.log.info({ err, topic }, 'authorizeUserForTopic threw');
      conn.close(1008, 'authorizeUserForTopic threw');
      return;
    }
    if (!conn.established) return;
    const delay = core.options.timings.subReplyDelayMs;
    if (!authorized) {
      conn.out.enqueue({ t: 'SUB_NO_AUTH', eid: topic }, delay);
      return;
    }
    const subscription: Subscription = { buffer: sub.smid !== undefined ? [] : undefined };
    this.#add(conn, topic, subscription);
    if (sub.smid === undefined) {
      conn.out.enqueue({ t: 'SUB_OK', eid: topic }, delay);
      return;
    }
    void core.track(this.#replay(conn, topic, sub.smid, subscription));
  }

  unsubscribe(conn: MatsSocketConnection, topic: string): void {
    const subs = this.#byConnection.get(conn);
    if (!subs?.delete(topic)) return;
    const conns = this.#byTopic.get(topic);
    conns?.delete(conn);
    if (conns?.size === 0) this.#byTopic.delete(topic);
  }

  drop(conn: MatsSocketConnection): void {
    const subs = this.#byConnection.get(conn);
    if (!subs) return;
    for (const topic of [...subs.keys()]) this.unsubscribe(conn, topic);
    this.#byConnection.delete(conn);
  }

  /** A broadcast PUB arrived: hand it to this node's subscribers of its topic. */
  deliver(p: PreparedPublish): void {
    const conns = this.#byTopic.get(p.topicId);
    if (!conns) return;
    for (const conn of conns) {
      const sub = this.#byConnection.get(conn)?.get(p.topicId);
      if (!sub || !conn.established) continue;
      if (sub.buffer) sub.buffer.push(p);
      else this.#send(conn, p);
    }
  }

  #send(conn: MatsSocketConnection, p: PreparedPublish): void {
    conn.out.enqueue(pubEnvelope(p), this.#core.options.timings.pubDelayMs, { stamp: 'serverInitiated' });
  }

  #add(conn: MatsSocketConnection, topic: string, subscription: Subscription): void {
    let subs = this.#byConnection.get(conn);
    if (!subs) this.#byConnection.set(conn, (subs = new Map<string, Subscription>()));
    subs.set(topic, subscription);
    let conns = this.#byTopic.get(topic);
    if (!conns) this.#byTopic.set(topic, (conns = new Set<MatsSocketConnection>()));
    conns.add(conn);
  }

  /** BR-1 steps 2-6. */
  async #replay(conn: MatsSocketConnection, topic: string, smid: string, sub: Subscription): Promise<void> {
    const core = this.#core;
    const delay = core.options.timings.subReplyDelayMs;
    const replayed: PreparedPublish[] = [];
    let result: 'SUB_OK' | 'SUB_LOST' = 'SUB_LOST';
    let lastSeq = -1;
    const wanted = parseReplaySmid(smid);
    if (core.options.topicReplayRetentionMs > 0 && wanted) {
      try {
        lastSeq = wanted.seq;
        const limit = core.store.options.topicReplayMaxPerTopic;
        for (;;) {
          const replay = await core.store.getTopicReplay(topic, lastSeq, limit);
          if (!replay || replay.epoch !== wanted.epoch || wanted.seq > replay.lastSeq) break;
          if (
            replayed.length === 0 &&
            replay.oldestRetainedSeq > wanted.seq + 1 &&
            wanted.seq !== replay.lastSeq
          )
            break;
          result = 'SUB_OK';
          for (const m of replay.messages) {
            replayed.push(fromLogged(topic, replay.epoch, m));
            lastSeq = m.seq;
          }
          if (replay.messages.length < limit || lastSeq >= replay.lastSeq) break;
        }
      } catch (err) {
        conn.log.warn({ err, topic }, 'topic replay lookup failed: SUB_LOST');
        result = 'SUB_LOST';
        replayed.length = 0;
      }
    }
    const buffered = sub.buffer ?? [];
    sub.buffer = undefined;
    if (!conn.established || this.#byConnection.get(conn)?.get(topic) !== sub) return;
    conn.out.enqueue({ t: result, eid: topic }, delay);
    for (const p of replayed) this.#send(conn, p);
    const after = replayed.length > 0 ? lastSeq : result === 'SUB_OK' ? (wanted?.seq ?? -1) : -1;
    if (result === 'SUB_OK' && wanted) this.#onReplayed?.(topic, wanted.epoch, after);
    buffered
      .filter((p) => p.seq === undefined || p.seq > after)
      .sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0))
      .forEach((p) => this.#send(conn, p));
  }
}
