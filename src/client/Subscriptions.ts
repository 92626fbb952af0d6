import type { C2SSub, S2CPub } from '../protocol/envelopes.ts';
import type { MatsSocketClientEvents, MessageEvent } from './clientEvents.ts';
import { ClientUsageError } from './clientErrors.ts';
import { toDebugInformation } from './debugInformation.ts';

/** A topic's local state: its listeners, the last PUB smid seen, and the connection the server knows it on. */
interface Topic {
  listeners: ((event: MessageEvent) => void)[];
  lastSmid: string | undefined;
  /** The connection id on which a SUB went out; subscriptions live per connection on the server. */
  subscribedOnConnection: number | undefined;
}

/**
 * The client's topic subscriptions (docs/protocol.md section 8.12). Unlike the official client, every subscription is
 * re-sent on every HELLO with the last PUB smid seen, dynamic ones included, so the server can replay (BR-1).
 */
export class Subscriptions {
  private readonly topics = new Map<string, Topic>();
  private readonly emit: <K extends keyof MatsSocketClientEvents>(
    name: K,
    e: MatsSocketClientEvents[K],
  ) => void;

  constructor(emit: <K extends keyof MatsSocketClientEvents>(name: K, e: MatsSocketClientEvents[K]) => void) {
    this.emit = emit;
  }

  /**
   * Adds a listener. Returns the SUB to send now if the topic is new on a connection where HELLO went out
   * (`connectionId`), else `undefined` (the next HELLO carries it).
   */
  add(
    topicId: string,
    listener: (event: MessageEvent) => void,
    connectionId: number | undefined,
  ): C2SSub | undefined {
    if (typeof topicId !== 'string' || topicId.length === 0)
      throw new ClientUsageError('topic id must be non-empty');
    if (topicId.startsWith('MatsSocket') || topicId.startsWith('!')) {
      throw new ClientUsageError(
        `topics starting with "MatsSocket" or "!" are reserved: [${topicId}] is illegal`,
      );
    }
    let topic = this.topics.get(topicId);
    if (!topic) {
      topic = { listeners: [], lastSmid: undefined, subscribedOnConnection: undefined };
      this.topics.set(topicId, topic);
    }
    if (!topic.listeners.includes(listener)) topic.listeners.push(listener);
    if (connectionId === undefined || topic.subscribedOnConnection === connectionId) return undefined;
    topic.subscribedOnConnection = connectionId;
    return { t: 'SUB', eid: topicId };
  }

  /**
   * Removes a listener. Returns true if that was the topic's last listener and the server has the subscription on
   * `connectionId` (so an UNSUB must go out).
   */
  remove(
    topicId: string,
    listener: (event: MessageEvent) => void,
    connectionId: number | undefined,
  ): boolean {
    const topic = this.topics.get(topicId);
    if (!topic) return false;
    topic.listeners = topic.listeners.filter((l) => l !== listener);
    if (topic.listeners.length > 0) return false;
    this.topics.delete(topicId);
    return connectionId !== undefined && topic.subscribedOnConnection === connectionId;
  }

  get size(): number {
    return this.topics.size;
  }

  /** The SUBs for a HELLO on connection `connectionId`: every topic, with the last smid seen. */
  subsForHello(connectionId: number): C2SSub[] {
    return [...this.topics].map(([eid, topic]) => {
      topic.subscribedOnConnection = connectionId;
      return topic.lastSmid === undefined ? { t: 'SUB', eid } : { t: 'SUB', eid, smid: topic.lastSmid };
    });
  }

  lastSmid(topicId: string): string | undefined {
    return this.topics.get(topicId)?.lastSmid;
  }

  handlePub(envelope: S2CPub, receivedTimestamp: number): void {
    const topic = this.topics.get(envelope.eid);
    if (!topic) {
      this.emit('error', {
        type: 'unwanted-pub',
        message: `PUB for topic [${envelope.eid}] without subscribers`,
      });
      return;
    }
    const event: MessageEvent = {
      type: 'PUB',
      data: envelope.msg,
      traceId: envelope.tid,
      messageId: envelope.smid,
      receivedTimestamp,
    };
    if (envelope.debug) event.debug = toDebugInformation(envelope.debug, receivedTimestamp);
    for (const listener of [...topic.listeners]) {
      try {
        listener(event);
      } catch (error) {
        this.emit('error', {
          type: 'listener-threw',
          message: `listener of topic [${envelope.eid}] threw`,
          error,
        });
      }
    }
    topic.lastSmid = envelope.smid;
  }
}
