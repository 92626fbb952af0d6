import type { OutgoingMessage, Transport } from '../broker/Transport.ts';
import { ErrorCode } from '../errors.ts';
import type { Logger } from '../logging.ts';
import type { LeasedOutgoingMessage, MatsMessageStore } from '../store/MatsMessageStore.ts';
import { briefError, deadLetterMessage } from './DeadLetter.ts';
import type { MatsInstruments } from './MatsInstruments.ts';
import { MatsHeader } from './MatsWire.ts';

/** What settling leased outbox rows needs. */
export interface OutboxRowSettlerOptions {
  store: MatsMessageStore;
  transport: Pick<Transport, 'state'>;
  /** Publishes with confirms (the runtime's publish, with its nack retry). */
  publish(messages: readonly OutgoingMessage[]): Promise<void>;
  logger: Logger;
  instruments: MatsInstruments;
  now(): number;
  /** The lease owner (this node's sweeper). */
  owner: string;
  /** Failed publishes that were the row's own fault before it is dead-lettered. */
  maxAttempts: number;
  appName: string;
  appVersion: string;
  nodeName: string;
}

interface Attempt {
  row: LeasedOutgoingMessage;
  message: OutgoingMessage;
  error?: unknown;
}

/**
 * Publishes leased outbox rows and settles each by its own outcome (`docs/mats-semantics.md` 2.3): a confirmed row is
 * deleted; a row refused by the broker (returned, nacked, its channel closed by a 406, unencodable) is released
 * with one more attempt counted and, at `maxAttempts`, dead-lettered to `DLQ.<its target>`; a row that failed
 * because the broker is unreachable or blocked is released without counting. No database transaction is open
 * while it waits for the broker: the rows were leased in a committed transaction before.
 */
export class OutboxRowSettler {
  readonly #o: OutboxRowSettlerOptions;

  constructor(options: OutboxRowSettlerOptions) {
    this.#o = options;
  }

  /** Returns how many rows were published. */
  async settle(rows: readonly LeasedOutgoingMessage[]): Promise<number> {
    const o = this.#o;
    const now = o.now();
    const done: string[] = [];
    let expired = 0;
    const attempts: Attempt[] = [];
    const dead: Attempt[] = [];
    for (const row of rows) {
      if (row.unreadable !== undefined) {
        dead.push({ row, message: row.message, error: new Error(row.unreadable) });
        continue;
      }
      const message = withRemainingTtl(row.message, now, row.ageMs);
      if (message) attempts.push({ row, message });
      else {
        // Expired: dropped, as a stage drops an expired delivery.
        done.push(row.matsMessageId);
        expired++;
      }
    }
    // Each row its own publish, so one refused row fails no confirmed batch-mate.
    const outcomes = await Promise.all(
      attempts.map((a) => o.publish([a.message]).then(noError, (error: unknown) => error)),
    );
    let failed: Attempt[] = [];
    attempts.forEach((a, i) => {
      if (outcomes[i] === undefined) done.push(a.row.matsMessageId);
      else failed.push({ ...a, error: outcomes[i] });
    });
    // A 406 closes the channel and fails the confirms of every publish waiting on it: when several failed
    // together, retry each alone so each outcome is that row's own. An outage stops the round.
    if (failed.length > 1) failed = await this.#isolate(failed, done);
    const published = done.length - expired;
    if (done.length > 0) await o.store.deleteOutbox(o.store.db, done);
    const uncounted: Attempt[] = [];
    for (const f of failed) {
      if (!this.#isRowFault(f.error)) uncounted.push(f);
      else if (f.row.attempts + 1 >= o.maxAttempts) dead.push(f);
      else await this.#release([f], true);
    }
    if (uncounted.length > 0) await this.#release(uncounted, false);
    for (const d of dead) await this.#deadLetter(d);
    if (failed.length > 0) o.instruments.outboxRowFailures.inc({ app: o.appName }, failed.length);
    return published;
  }

  async #isolate(failed: readonly Attempt[], done: string[]): Promise<Attempt[]> {
    const still: Attempt[] = [];
    let outage = false;
    for (const f of failed) {
      if (outage) {
        still.push(f);
        continue;
      }
      try {
        await this.#o.publish([f.message]);
        done.push(f.row.matsMessageId);
      } catch (error) {
        still.push({ ...f, error });
        outage = !this.#isRowFault(error);
      }
    }
    return still;
  }

  /**
   * Whether a failed publish was the row's own doing (counts an attempt) rather than the broker being down or
   * blocked (does not: a long outage must not dead-letter every row waiting in the outbox).
   */
  #isRowFault(error: unknown): boolean {
    const code = (error as { code?: unknown } | undefined)?.code;
    if (code === ErrorCode.TRANSPORT_CONFIRM_TIMEOUT || code === ErrorCode.TRANSPORT_CLOSED) return false;
    // "Unavailable" while the connection is up: the broker closed the publish channel over this message.
    if (code === ErrorCode.TRANSPORT_UNAVAILABLE) return this.#o.transport.state === 'connected';
    return true;
  }

  async #release(failed: readonly Attempt[], countAttempt: boolean): Promise<void> {
    const o = this.#o;
    const reason = briefError(failed[0]!.error);
    await o.store.releaseOutbox(
      failed.map((f) => f.row.matsMessageId),
      o.owner,
      { countAttempt, reason },
    );
    const level = countAttempt ? 'warn' : 'debug';
    o.logger[level](
      { matsMessageIds: failed.map((f) => f.row.matsMessageId).slice(0, 20), reason, countAttempt },
      'Mats outbox rows not published; released for a later sweep',
    );
  }

  async #deadLetter(d: Attempt): Promise<void> {
    const o = this.#o;
    const attempt = d.row.attempts + (d.row.unreadable === undefined ? 1 : 0);
    const reason = `outbox row ${d.row.matsMessageId} not published after ${attempt} attempt(s): ${briefError(d.error)}`;
    const target = d.row.message.target;
    const message = deadLetterMessage(
      d.row.message,
      { error: reason, refused: false, attempt, envelopeDlqCount: undefined },
      {
        // `DLQ.<queue>`: the stage's own DLQ for a stage queue (its interactive queue shares it).
        queuePrefix: '',
        stageId: target.kind === 'queue' ? target.name.replace(/:i$/, '') : target.name,
        appName: o.appName,
        appVersion: o.appVersion,
        nodeName: o.nodeName,
        stageOrigin: 'mats_outbox sweeper',
        now: o.now(),
      },
    );
    try {
      await o.publish([message]);
    } catch (error) {
      if (!this.#isRowFault(error)) {
        await this.#release([{ ...d, error }], false);
        return;
      }
      // Not even its dead letter is accepted: keep the row out of every sweep, for an operator.
      await o.store.parkOutbox(
        d.row.matsMessageId,
        o.owner,
        `${reason}; dead letter refused: ${briefError(error)}`,
      );
      o.logger.error(
        { matsMessageId: d.row.matsMessageId, reason },
        'Mats outbox row parked: cannot be published or dead-lettered',
      );
      o.instruments.outboxDeadLettered.inc({ app: o.appName, outcome: 'parked' });
      return;
    }
    await o.store.deleteOutbox(o.store.db, [d.row.matsMessageId]);
    o.logger.error(
      { matsMessageId: d.row.matsMessageId, target: target.name, dlq: message.target.name, reason },
      'Mats outbox row dead-lettered',
    );
    o.instruments.outboxDeadLettered.inc({ app: o.appName, outcome: 'dlq' });
  }
}

function noError(): undefined {
  return undefined;
}

/**
 * The message with its remaining TTL as `expiration` (time in the outbox must not extend it), or undefined if
 * expired. With `ageMs` (a leased row's age by the database's clock, docs/mats-semantics.md §2.3) the remaining
 * TTL is the stored hop TTL less that age: the row may have been written by another node, whose clock the
 * `mats_Expires` deadline is on. Without it (this node's own rows, just written), `mats_Expires` against `now`.
 */
export function withRemainingTtl(
  message: OutgoingMessage,
  now: number,
  ageMs?: number,
): OutgoingMessage | undefined {
  const ttl = message.properties.expiration;
  const expires = message.properties.headers[MatsHeader.EXPIRES];
  let remaining: number;
  if (ageMs !== undefined && typeof ttl === 'number') remaining = ttl - ageMs;
  else if (typeof expires === 'number') remaining = expires - now;
  else return message;
  if (remaining <= 0) return undefined;
  return { ...message, properties: { ...message.properties, expiration: remaining } };
}
