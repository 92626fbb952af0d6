import type { MatsFactory } from '../../mats/MatsFactory.ts';
import type { MatsInitiate } from '../../mats/MatsInitiate.ts';
import type { MatsInitiator } from '../../mats/MatsInitiator.ts';
import type { TransactionScript } from '../../store/TransactionScript.ts';
import type { ReplyState } from '../messaging/ReplyState.ts';
import type { CollectedForward } from './IncomingContextImpl.ts';

/** What one forward needs besides the collected call. */
export interface ForwardContext {
  sessionId: string;
  traceId: string;
  endpointId: string;
  /** The client's `to` (REQUEST): non-essential forwards get TTL `to + 15000`. */
  clientTimeoutMs: number | undefined;
  /** Set for a client REQUEST: the reply goes to the reply handler with this state. */
  replyState: Omit<ReplyState, 'mmsts'> | undefined;
}

/** Extra TTL of non-essential forwards beyond the client's own timeout (docs/protocol.md 8.6). */
const NONESSENTIAL_TTL_EXTRA_MS = 15_000;

/**
 * Turns collected forwards into Mats initiations joined to the handling transaction (`initiate(fn, { trx })`):
 * the messages are written to the Mats outbox in it and published after its commit, so a committed forward is
 * never lost. The backend flow's traceId is the client's `tid`, unchanged.
 */
export class ForwardInitiator {
  readonly #initiator: MatsInitiator;
  readonly #instance: string;
  #replyHandlerId: string;
  readonly #now: () => number;

  constructor(factory: MatsFactory, instanceName: string, replyHandlerId: string, now: () => number) {
    this.#instance = instanceName;
    this.#initiator = factory.getOrCreateInitiator(`MatsSocket.${instanceName}.forward`);
    this.#replyHandlerId = replyHandlerId;
    this.#now = now;
  }

  /** Sends the replies of the requests forwarded from now on to `endpointId` (this node's reply queue). */
  replyTo(endpointId: string): void {
    this.#replyHandlerId = endpointId;
  }

  /**
   * Initiates the forwards of many handled messages in `tx`: one initiation per forward (flags are per
   * initiation), one `mats_outbox` insert for all of them (a write of the script: no knex transaction needed).
   */
  async initiate(
    batch: ReadonlyArray<{ forwards: readonly CollectedForward[]; context: ForwardContext }>,
    tx: TransactionScript,
  ): Promise<void> {
    const fns: ((init: MatsInitiate) => void)[] = [];
    for (const { forwards, context } of batch) {
      for (const forward of forwards) fns.push((init) => this.#build(init, forward, context));
    }
    if (fns.length > 0) await this.#initiator.initiateJoinedMany(fns, tx);
  }

  #build(init: MatsInitiate, forward: CollectedForward, context: ForwardContext): void {
    init
      .traceId(context.traceId)
      .from(`MatsSocket.${this.#instance}.${context.endpointId}`)
      .to(forward.to)
      .interactive()
      .addString('matsSocketSessionId', context.sessionId);
    if (forward.flavour === 'nonessential') {
      const ttl =
        context.clientTimeoutMs !== undefined
          ? context.clientTimeoutMs + NONESSENTIAL_TTL_EXTRA_MS
          : undefined;
      init.nonPersistent(ttl).noAudit();
    }
    const options = forward.options;
    if (options?.traceProperties)
      for (const [k, v] of Object.entries(options.traceProperties)) init.setTraceProperty(k, v);
    if (options?.strings) for (const [k, v] of Object.entries(options.strings)) init.addString(k, v);
    if (options?.bytes) for (const [k, v] of Object.entries(options.bytes)) init.addBytes(k, v);
    if (forward.customize) forward.customize(init);
    if (context.replyState) {
      const state: ReplyState = { ...context.replyState, mmsts: this.#now() };
      init.replyTo(this.#replyHandlerId, state).request(forward.message);
    } else {
      init.send(forward.message);
    }
  }
}
