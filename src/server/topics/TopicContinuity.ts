import type { Logger } from '../../logging.ts';
import type { TopicReplay } from '../../store/storeTypes.ts';
import { backoffDelay } from '../../util/backoff.ts';
import { fromLogged, type PreparedPublish } from './PreparedPublish.ts';
import { parseReplaySmid } from './TopicSubscriptions.ts';

/** What {@link TopicContinuity} needs around it. */
export interface TopicContinuityHost {
  /** The topic's replay log after `afterSeq` (the store's `getTopicReplay`). */
  readReplay(topicId: string, afterSeq: number, limit: number): Promise<TopicReplay | null>;
  /** Hands a publish to this node's subscribers of its topic. */
  deliver(p: PreparedPublish): void;
  /** Whether this node has subscribers of the topic (only those topics are followed). */
  hasSubscribers(topicId: string): boolean;
  replayBatch: number;
  logger: Logger;
  /** How long a hole may be waited for before the log is read (broadcasts from several nodes cross), ms. */
  reorderWaitMs?: number;
  /** The longest later publishes are held while a hole cannot be read from the log (database down), ms. */
  maxHoldMs?: number;
}

/** Where this node is in one topic's sequence, and the publishes held while a hole is waited for or filled. */
interface Position {
  epoch: string;
  seq: number;
  held: PreparedPublish[] | undefined;
  heldSince: number;
  timer: NodeJS.Timeout | undefined;
  failures: number;
  filling: boolean;
  /** The first publishes seen here: collected for `reorderWaitMs` (they may cross), then delivered in order. */
  starting: boolean;
}

/**
 * Keeps the publishes a node delivers to its subscribers in sequence, without holes. A broadcast is best effort:
 * when the broker is down the publisher's broadcast fails after its log row is committed, and subscribers whose
 * connection stayed up would miss it without being told (a resubscribe after a reconnect replays it; a live one
 * never would); and broadcasts from several nodes can cross. So each node follows the sequence of the topics it
 * has subscribers of. A broadcast that skips seqs is held: the missing ones usually arrive a moment later; if not,
 * they are read from the replay log (again, with back-off, while the database is down, for up to `maxHoldMs`, after
 * which the hole is given up with a warning). A seq already delivered is dropped, and after the broker connection
 * comes back ({@link catchUp}) the log is read for what was missed at the tail. Publishes without a seq (replay
 * disabled) pass straight through.
 */
export class TopicContinuity {
  readonly #host: TopicContinuityHost;
  readonly #positions = new Map<string, Position>();
  readonly #reorderWaitMs: number;
  readonly #maxHoldMs: number;

  constructor(host: TopicContinuityHost) {
    this.#host = host;
    this.#reorderWaitMs = host.reorderWaitMs ?? 50;
    this.#maxHoldMs = host.maxHoldMs ?? 30_000;
  }

  /** A broadcast publish arrived. */
  receive(p: PreparedPublish): void {
    const at = p.seq === undefined ? undefined : parseReplaySmid(p.smid);
    if (!at || !this.#host.hasSubscribers(p.topicId)) {
      this.#forget(p.topicId);
      this.#host.deliver(p);
      return;
    }
    let position = this.#positions.get(p.topicId);
    if (!position || position.epoch !== at.epoch) {
      // First seen here (or the topic was created again): nothing published before the subscriptions is owed to
      // anyone, but the first few may cross each other; collect them briefly, then deliver them in order. What an
      // earlier epoch still held goes out first.
      if (position?.held)
        for (const h of position.held.sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0))) this.#host.deliver(h);
      this.#forget(p.topicId);
      position = {
        epoch: at.epoch,
        seq: 0,
        held: [p],
        heldSince: Date.now(),
        timer: undefined,
        failures: 0,
        filling: false,
        starting: true,
      };
      this.#positions.set(p.topicId, position);
      this.#arm(p.topicId, position, this.#reorderWaitMs);
      return;
    }
    if (position.starting) {
      if (!position.held!.some((h) => h.seq === at.seq)) position.held!.push(p);
      return;
    }
    if (at.seq <= position.seq) return;
    if (!position.held && at.seq === position.seq + 1) {
      position.seq = at.seq;
      this.#host.deliver(p);
      return;
    }
    if (!position.held) {
      position.held = [];
      position.heldSince = Date.now();
      this.#arm(p.topicId, position, this.#reorderWaitMs);
    }
    position.held.push(p);
    this.#drain(position);
  }

  /**
   * A subscriber here was given the topic's log up to `seq` (a SUB's replay, BR-1): from then on this node owes its
   * subscribers every later seq. Without a position the node would start following at the next broadcast it
   * happens to receive and skip, without telling anyone, whatever was committed in between but whose broadcast was
   * lost (e.g. while the broker was down); with one starting at `seq`, such a gap is filled from the log.
   */
  noteReplayed(topicId: string, epoch: string, seq: number): void {
    const position = this.#positions.get(topicId);
    if (!position) {
      this.#positions.set(topicId, {
        epoch,
        seq,
        held: undefined,
        heldSince: 0,
        timer: undefined,
        failures: 0,
        filling: false,
        starting: false,
      });
      return;
    }
    if (position.starting && position.epoch === epoch) position.seq = Math.max(position.seq, seq);
  }

  /** The broker connection is back: read what each followed topic missed at its tail while it was gone. */
  catchUp(): Promise<void> {
    const fills: Promise<void>[] = [];
    for (const [topicId, position] of this.#positions) {
      if (!this.#host.hasSubscribers(topicId)) {
        this.#forget(topicId);
        continue;
      }
      if (position.filling || position.starting) continue;
      position.held ??= [];
      if (position.heldSince === 0) position.heldSince = Date.now();
      clearTimeout(position.timer);
      position.timer = undefined;
      fills.push(this.#fill(topicId, position));
    }
    return Promise.all(fills).then(() => undefined);
  }

  /** Server stop: no timer left behind. */
  stop(): void {
    for (const topicId of [...this.#positions.keys()]) this.#forget(topicId);
  }

  #forget(topicId: string): void {
    const position = this.#positions.get(topicId);
    if (position) clearTimeout(position.timer);
    this.#positions.delete(topicId);
  }

  #arm(topicId: string, position: Position, delayMs: number): void {
    clearTimeout(position.timer);
    position.timer = setTimeout(() => {
      position.timer = undefined;
      if (position.starting) this.#start(topicId, position);
      else void this.#fill(topicId, position);
    }, delayMs);
  }

  /**
   * Ends the start window: the sequence is followed from the lowest publish collected, which goes out; a gap
   * between it and the others collected (a broadcast that crossed them by more than the window) is filled from the
   * log, never skipped. If a replay gave subscribers the log up to a seq meanwhile ({@link noteReplayed}), what was
   * collected up to it goes out as well (a repeat for that subscriber, allowed by BR-1), and the sequence is
   * followed from there.
   */
  #start(topicId: string, position: Position): void {
    position.starting = false;
    const held = (position.held ?? []).sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0));
    if (position.seq > 0) {
      while (held.length > 0 && (held[0]!.seq ?? 0) <= position.seq) this.#host.deliver(held.shift()!);
    } else if (held.length > 0) {
      const first = held.shift()!;
      position.seq = first.seq ?? position.seq;
      this.#host.deliver(first);
    }
    this.#drain(position);
    if (position.held) {
      position.heldSince = Date.now();
      void this.#fill(topicId, position);
    }
  }

  /** Delivers the held publishes that continue the sequence; ends the hold when nothing is left. */
  #drain(position: Position): void {
    const held = position.held;
    if (!held) return;
    held.sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0));
    while (held.length > 0 && (held[0]!.seq ?? 0) <= position.seq + 1) {
      const p = held.shift()!;
      if ((p.seq ?? 0) <= position.seq) continue;
      position.seq = p.seq ?? position.seq;
      this.#host.deliver(p);
    }
    if (held.length === 0 && !position.filling) this.#endHold(position);
  }

  #endHold(position: Position): void {
    position.held = undefined;
    position.heldSince = 0;
    position.failures = 0;
    clearTimeout(position.timer);
    position.timer = undefined;
  }

  /** Reads the log's rows after the position and delivers them, then what is held; retries while it fails. */
  async #fill(topicId: string, position: Position): Promise<void> {
    if (position.filling || this.#positions.get(topicId) !== position) return;
    position.filling = true;
    try {
      for (;;) {
        const replay = await this.#host.readReplay(topicId, position.seq, this.#host.replayBatch);
        if (!replay || replay.epoch !== position.epoch) break;
        for (const m of replay.messages) {
          if (m.seq <= position.seq) continue;
          position.seq = m.seq;
          this.#host.deliver(fromLogged(topicId, replay.epoch, m));
        }
        if (replay.messages.length < this.#host.replayBatch || position.seq >= replay.lastSeq) break;
      }
    } catch (err) {
      this.#host.logger.warn({ err, topicId }, 'reading missed topic messages from the replay log failed');
    } finally {
      position.filling = false;
    }
    this.#drain(position);
    if (!position.held) return;
    // Still a hole: the log could not be read (database down), or the missing rows are not visible yet.
    if (Date.now() - position.heldSince < this.#maxHoldMs) {
      this.#arm(topicId, position, backoffDelay(position.failures++, { initialMs: 100, maxMs: 5000 }));
      return;
    }
    // Not filled within maxHoldMs: give the hole up, so the topic's later publishes are not held for ever.
    const held = position.held;
    this.#host.logger.warn(
      { topicId, afterSeq: position.seq, nextSeq: held[0]?.seq },
      'topic messages missing here and not in the replay log: subscribers skip them',
    );
    for (const p of held) {
      if ((p.seq ?? 0) <= position.seq) continue;
      position.seq = p.seq ?? position.seq;
      this.#host.deliver(p);
    }
    this.#endHold(position);
  }
}
