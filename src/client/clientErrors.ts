import { ErrorCode, MatsSocketError } from '../errors.ts';
import type { MessageEvent, MessageEventType, ReceivedEvent, ReceivedEventType } from './clientEvents.ts';

const receivedCodes: Record<Exclude<ReceivedEventType, 'ACK'>, ErrorCode> = {
  NACK: ErrorCode.CLIENT_NACKED,
  TIMEOUT: ErrorCode.CLIENT_TIMEOUT,
  SESSION_CLOSED: ErrorCode.CLIENT_SESSION_CLOSED,
  ATTEMPTS_EXHAUSTED: ErrorCode.CLIENT_ATTEMPTS_EXHAUSTED,
};

const replyCodes: Partial<Record<MessageEventType, ErrorCode>> = {
  REJECT: ErrorCode.CLIENT_REJECTED,
  NACK: ErrorCode.CLIENT_NACKED,
  TIMEOUT: ErrorCode.CLIENT_TIMEOUT,
  SESSION_CLOSED: ErrorCode.CLIENT_SESSION_CLOSED,
  ATTEMPTS_EXHAUSTED: ErrorCode.CLIENT_ATTEMPTS_EXHAUSTED,
};

/**
 * Rejection of `send()` and `requestReplyTo()`: the server NACKed the message, or it failed locally (timeout,
 * session closed, attempts exhausted). `event` has the details and timings.
 */
export class ReceivedError extends MatsSocketError {
  readonly event: ReceivedEvent;

  constructor(event: ReceivedEvent) {
    const code = event.type === 'ACK' ? ErrorCode.CLIENT_NACKED : receivedCodes[event.type];
    super(
      code,
      `${event.type} for cmid ${event.cmid} (traceId ${event.traceId})${describe(event.description)}`,
    );
    this.event = event;
  }
}

/**
 * Rejection of `request()`: the server answered REJECT (`event.data` is its message), NACKed the request, or the
 * request failed locally (timeout, session closed, attempts exhausted).
 */
export class ReplyError extends MatsSocketError {
  readonly event: MessageEvent;

  constructor(event: MessageEvent, description?: string) {
    super(
      replyCodes[event.type] ?? ErrorCode.CLIENT_REJECTED,
      `${event.type} for request cmid ${event.messageId} (traceId ${event.traceId})${describe(description)}`,
    );
    this.event = event;
  }
}

/** An API method was called with an illegal argument (a reserved id, an unknown reply terminator, ...). */
export class ClientUsageError extends MatsSocketError {
  constructor(message: string) {
    super(ErrorCode.CLIENT_ILLEGAL_ARGUMENT, message);
  }
}

function describe(description: string | undefined): string {
  return description === undefined ? '' : `: ${description}`;
}
