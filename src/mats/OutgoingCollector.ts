import { derivedSuffix } from './matsIds.ts';
import type { PendingMessage } from './MatsWire.ts';

/**
 * The outgoing messages of one transactional unit (a stage run, including its `nextDirect` chain and joined
 * initiations, or one initiation). Messages are collected at call time and published only after the commit.
 */
export class OutgoingCollector {
  readonly messages: PendingMessage[] = [];
  /** Seed for deterministic ids of the messages produced (the incoming message id etc.); undefined = random. */
  readonly seed: string | undefined;
  #counter = 0;
  #afterCommit: (() => unknown) | undefined;

  constructor(seed: string | undefined) {
    this.seed = seed;
  }

  /** A seed unique to the next message of this unit; same position → same seed on a redelivery. */
  nextSeed(): string | undefined {
    const n = this.#counter++;
    return this.seed === undefined ? undefined : `${this.seed}#${n}`;
  }

  /** A message id suffix for the next message (deterministic when the unit has a seed). */
  nextSuffix(random: () => string): string {
    const seed = this.nextSeed();
    return seed === undefined ? random() : derivedSuffix(seed);
  }

  add(message: PendingMessage): void {
    this.messages.push(message);
  }

  /** Keeps only the last registered function (`docs/mats-semantics.md` 1.3). */
  setAfterCommit(fn: () => unknown): void {
    this.#afterCommit = fn;
  }

  get afterCommit(): (() => unknown) | undefined {
    return this.#afterCommit;
  }
}
