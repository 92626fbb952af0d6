import type { Knex } from 'knex';
import { ErrorCode, MatsSocketServerError } from '../../errors.ts';
import type { Logger } from '../../logging.ts';
import type { MatsInitiate } from '../../mats/MatsInitiate.ts';
import { toDataAccessError } from '../../store/sqlErrors.ts';
import type { ConnectionInfo } from '../auth/AuthenticationPlugin.ts';
import type { ForwardOptions, IncomingContext, IncomingMessageType } from '../messaging/EndpointTypes.ts';

/** The handler's decision (docs/protocol.md 8.8). */
export type IncomingDecision =
  | { kind: 'none' }
  | { kind: 'deny' }
  | { kind: 'forward' }
  | { kind: 'resolve'; message: unknown }
  | { kind: 'reject'; message: unknown };

/** A forward collected from a handler, initiated in the handling transaction. */
export interface CollectedForward {
  to: string;
  message: unknown;
  flavour: 'essential' | 'nonessential' | 'custom';
  options: ForwardOptions | undefined;
  customize: ((init: MatsInitiate) => void) | undefined;
}

/** Everything an {@link IncomingContextImpl} is built from. */
export interface IncomingContextInit {
  endpointId: string;
  messageType: IncomingMessageType;
  message: unknown;
  traceId: string;
  sessionId: string;
  cmid: string | undefined;
  smid: string | undefined;
  userId: string | undefined;
  principal: unknown;
  authorizationValue: string | undefined;
  connectionInfo: ConnectionInfo | undefined;
  resolvedDebugOptions: number;
  clientTimeoutMs: number | undefined;
  correlationString: string | undefined;
  correlationBinary: Uint8Array | undefined;
  description: string | undefined;
  log: Logger;
  /** For `getSql()`. */
  db: Knex;
  /** An already open transaction to hand out from `getSql()` (reply terminators run inside one). */
  trx?: Knex.Transaction;
}

function illegal(message: string): MatsSocketServerError {
  return new MatsSocketServerError(ErrorCode.SERVER_ILLEGAL_CALL, message);
}

/** @internal The {@link IncomingContext} implementation: records the decision and the collected forwards. */
export class IncomingContextImpl implements IncomingContext {
  readonly endpointId: string;
  readonly messageType: IncomingMessageType;
  readonly message: unknown;
  readonly traceId: string;
  readonly sessionId: string;
  readonly cmid: string | undefined;
  readonly smid: string | undefined;
  readonly userId: string | undefined;
  readonly principal: unknown;
  readonly authorizationValue: string | undefined;
  readonly connectionInfo: ConnectionInfo | undefined;
  readonly resolvedDebugOptions: number;
  readonly clientTimeoutMs: number | undefined;
  readonly correlationString: string | undefined;
  readonly correlationBinary: Uint8Array | undefined;
  readonly description: string | undefined;
  readonly log: Logger;
  readonly forwards: CollectedForward[] = [];
  #decision: IncomingDecision = { kind: 'none' };
  readonly #db: Knex;
  #trx: Promise<Knex.Transaction> | undefined;
  readonly #givenTrx: boolean;
  #closed = false;

  constructor(init: IncomingContextInit) {
    this.endpointId = init.endpointId;
    this.messageType = init.messageType;
    this.message = init.message;
    this.traceId = init.traceId;
    this.sessionId = init.sessionId;
    this.cmid = init.cmid;
    this.smid = init.smid;
    this.userId = init.userId;
    this.principal = init.principal;
    this.authorizationValue = init.authorizationValue;
    this.connectionInfo = init.connectionInfo;
    this.resolvedDebugOptions = init.resolvedDebugOptions;
    this.clientTimeoutMs = init.clientTimeoutMs;
    this.correlationString = init.correlationString;
    this.correlationBinary = init.correlationBinary;
    this.description = init.description;
    this.log = init.log;
    this.#db = init.db;
    this.#givenTrx = init.trx !== undefined;
    if (init.trx) this.#trx = Promise.resolve(init.trx);
  }

  get decision(): IncomingDecision {
    return this.#decision;
  }

  /** The handler's own transaction, if it asked for one (not when it was given). */
  get ownTransaction(): Promise<Knex.Transaction> | undefined {
    return this.#givenTrx ? undefined : this.#trx;
  }

  /** No more decisions (the handler returned). */
  close(): void {
    this.#closed = true;
  }

  #decide(decision: IncomingDecision): void {
    if (this.#closed) throw illegal('The incoming handler has already returned; decide inside it');
    if (this.#decision.kind !== 'none') {
      throw illegal(
        `The incoming handler already decided (${this.#decision.kind}); only one decision is allowed`,
      );
    }
    this.#decision = decision;
  }

  deny(): void {
    this.#decide({ kind: 'deny' });
  }

  forwardEssential(toEndpointId: string, message: unknown, options?: ForwardOptions): void {
    this.#forward({ to: toEndpointId, message, flavour: 'essential', options, customize: undefined });
  }

  forwardNonessential(toEndpointId: string, message: unknown, options?: ForwardOptions): void {
    this.#forward({ to: toEndpointId, message, flavour: 'nonessential', options, customize: undefined });
  }

  forward(toEndpointId: string, message: unknown, customize: (init: MatsInitiate) => void): void {
    if (typeof customize !== 'function')
      throw illegal('forward(to, msg, customize): customize must be a function');
    this.#forward({ to: toEndpointId, message, flavour: 'custom', options: undefined, customize });
  }

  #forward(forward: CollectedForward): void {
    if (typeof forward.to !== 'string' || forward.to.length === 0)
      throw illegal('forward: the target endpoint id is required');
    this.#decide({ kind: 'forward' });
    this.forwards.push(forward);
  }

  resolve(reply: unknown): void {
    if (this.messageType !== 'REQUEST')
      throw illegal(`resolve() is only allowed for a REQUEST, not a ${this.messageType}`);
    this.#decide({ kind: 'resolve', message: reply });
  }

  reject(reply: unknown): void {
    if (this.messageType !== 'REQUEST')
      throw illegal(`reject() is only allowed for a REQUEST, not a ${this.messageType}`);
    this.#decide({ kind: 'reject', message: reply });
  }

  getSql(): Promise<Knex.Transaction> {
    if (this.#closed && !this.#trx) return Promise.reject(illegal('getSql() after the handler returned'));
    this.#trx ??= this.#db.transaction().catch((err: unknown) => {
      throw toDataAccessError(err, 'begin handler transaction');
    });
    return this.#trx;
  }
}
