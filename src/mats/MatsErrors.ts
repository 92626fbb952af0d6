import { ErrorCode, MatsSocketError } from '../errors.ts';

/**
 * Thrown by a stage lambda to say "this message can never succeed": the stage rolls back and the message is
 * dead-lettered at once, without retries (`docs/mats-semantics.md` 1.3).
 */
export class MatsRefuseMessageError extends MatsSocketError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.MATS_REFUSE_MESSAGE, message, options);
  }
}

/** An illegal use of the Mats API: bad endpoint id, illegal call combination in a stage, missing builder field. */
export class MatsIllegalCallError extends MatsSocketError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.MATS_ILLEGAL_CALL, message, options);
  }
}

/** An initiation failed and nothing was committed: no DB commit, no messages (`docs/mats-semantics.md` 1.4). */
export class MatsBackendError extends MatsSocketError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.MATS_BACKEND, message, options);
  }
}

/**
 * An initiation committed its DB work but its messages could not be published. Only possible with the
 * transactional outbox off; with it on, the sweeper publishes the committed rows later.
 */
export class MatsMessageSendError extends MatsSocketError {
  /** The ids of the messages that may not have been delivered. */
  readonly matsMessageIds: readonly string[];

  constructor(message: string, matsMessageIds: readonly string[], options?: { cause?: unknown }) {
    super(ErrorCode.MATS_MESSAGE_SEND, message, options);
    this.matsMessageIds = matsMessageIds;
  }
}

/** A futurized request got no reply within its timeout. */
export class MatsFuturizerTimeoutError extends MatsSocketError {
  constructor(message: string) {
    super(ErrorCode.MATS_FUTURIZER_TIMEOUT, message);
  }
}

/** Too many futurized requests are outstanding; the new one is rejected at once. */
export class MatsFuturizerCapacityError extends MatsSocketError {
  constructor(message: string) {
    super(ErrorCode.MATS_FUTURIZER_CAPACITY, message);
  }
}
