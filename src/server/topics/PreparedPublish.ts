import { RawJson } from '../../protocol/encodeFrame.ts';
import type { TopicReplay } from '../../store/storeTypes.ts';
import type { OutEnvelope } from '../connection/OutgoingQueue.ts';

/**
 * A publish ready to broadcast: its PUB envelope (without `msg`) and message as JSON text. Its own module so that
 * the hub, which prepares publishes, and the subscriptions, which deliver them, both import it and not each other.
 */
export interface PreparedPublish {
  topicId: string;
  smid: string;
  /** The replay log sequence (BR-1), absent when replay is disabled. */
  seq?: number;
  envelope: string;
  message?: string;
}

/** The PUB envelope to write for a prepared publish (`msg` as raw JSON). */
export function pubEnvelope(p: PreparedPublish): OutEnvelope {
  const envelope = JSON.parse(p.envelope) as OutEnvelope;
  if (p.message !== undefined) envelope.msg = new RawJson(p.message);
  return envelope;
}

/** A publish as the replay log kept it, ready to deliver again (its smid is `<epoch>.<seq>`, BR-1). */
export function fromLogged(
  topicId: string,
  epoch: string,
  m: TopicReplay['messages'][number],
): PreparedPublish {
  const envelope = JSON.parse(m.envelope) as Record<string, unknown>;
  const smid = `${epoch}.${m.seq}`;
  return {
    topicId,
    smid,
    seq: m.seq,
    envelope: JSON.stringify({ ...envelope, smid }),
    ...(m.messageText !== null ? { message: m.messageText } : {}),
  };
}
