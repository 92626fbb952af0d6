import type { Logger } from '../../logging.ts';
import type { TopicReplay } from '../../store/storeTypes.ts';
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
}

/** Where this node is in one topic's sequence, and the publishes held while a hole is filled from the log. */
interface Position {
  epoch: string;
  seq: number;
  held: PreparedPublish[] | undefined;
}

/**
 * Keeps the publishes a node delivers to its subscribers in sequence, without holes. A broadcast is best effort:
 * when the broker is down the publisher's broadcast fails after its log row is committed, and subscribers whose
 * connection stayed up would miss it without being told (a resubscribe after a reconnect replays it; a live one
 * never would). So each node follows the sequence of the topics it has subscribers of: a broadcast that skips
 * seqs makes it read the missing ones from the replay log first, a seq already delivered is dropped, and after
 * the broker connection comes back ({@link catchUp}) it reads what it missed at the tail. Publishes without a
 * seq (replay disabled) pass straight through.
 */
export class TopicContinuity {
  readonly #host: TopicContinuityHost;
  readonly #positions = new Map<string, Position>();

  constructor(host: TopicContinuityHost) {
    this.#host = host;
  }

  /** A broadcast publish arrived. */
  receive(p: PreparedPublish): void {
    const at = p.seq === undefined ? undefined : parseReplaySmid(p.smid);
    if (!at || !this.#host.hasSubscribers(p.topicId)) {
      this.#positions.delete(p.topicId);
      this.#host.deliver(p);
      return;
    }
    const position = this.#positions.get(p.topicId);
    if (!position || position.epoch !== at.epoch) {
      // First seen here (or the topic was created again): nothing before it is owed to anyone.
      this.#positions.set(p.topicId, { epoch: at.epoch, seq: at.seq, held: undefined });
      this.#host.deliver(p);
      return;
    }
    if (position.held) position.held.push(p);
    else if (at.seq <= position.seq) return;
    else if (at.seq === position.seq + 1) {
      position.seq = at.seq;
      this.#host.deliver(p);
    } else {
      position.held = [p];
      void this.#fill(p.topicId, position);
    }
  }

  /** The broker connection is back: read what each followed topic missed at its tail while it was gone. */
  catchUp(): Promise<void> {
    const fills: Promise<void>[] = [];
    for (const [topicId, position] of this.#positions) {
      if (!this.#host.hasSubscribers(topicId)) {
        this.#positions.delete(topicId);
        continue;
      }
      if (position.held) continue;
      position.held = [];
      fills.push(this.#fill(topicId, position));
    }
    return Promise.all(fills).then(() => undefined);
  }

  /** Delivers the log's rows after the position, then what was held meanwhile, in seq order. */
  async #fill(topicId: string, position: Position): Promise<void> {
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
      // The hole stays; the subscribers' next resubscribe replays it (or is told SUB_LOST).
      this.#host.logger.warn({ err, topicId }, 'reading missed topic messages from the replay log failed');
    }
    // Directly, not through receive(): a hole the log cannot fill (purged, or the read failed) must not start
    // another fill, and what arrived during this one was committed to the log before it was broadcast.
    const held = position.held ?? [];
    position.held = undefined;
    held.sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0));
    for (const p of held) {
      if ((p.seq ?? 0) <= position.seq) continue;
      position.seq = p.seq ?? position.seq;
      this.#host.deliver(p);
    }
  }
}
