import { jsonDepthExceeds } from '../../protocol/messageDepth.ts';
import type { MatsSocketConnection } from '../connection/MatsSocketConnection.ts';
import type { InformationEnvelope, ServerCore } from '../ServerCore.ts';
import { InFlightLimiter } from './InFlightLimiter.ts';

/** The outcome of {@link IncomingAdmission.admit}: refused with a NACK reason, or admitted with its release. */
export type Admission = { refused: string } | { release: () => void };

/**
 * The door of incoming client messages. Application-level bad input (`tid` too long, `msg` nested too deep) is
 * refused with a reason, the NACK, before anything runs: such a message must never reach, and fail, a commit
 * shared with other sessions. Admitted messages hold a slot per connection and one per node until handled, so
 * one connection cannot queue without bound; the connection waits for its slot in {@link admit}, and with it its
 * frame processing and the reading of its socket.
 */
export class IncomingAdmission {
  readonly #core: ServerCore;
  readonly #nodeSlots: InFlightLimiter;
  readonly #connectionSlots = new WeakMap<MatsSocketConnection, InFlightLimiter>();

  constructor(core: ServerCore) {
    this.#core = core;
    this.#nodeSlots = new InFlightLimiter(core.options.limits.maxInFlightPerNode);
  }

  /** Never rejects; a refusal costs no slot. */
  async admit(conn: MatsSocketConnection, envelope: InformationEnvelope): Promise<Admission> {
    const refused = this.#inputProblem(envelope);
    if (refused !== undefined) return { refused };
    const connectionSlots = this.#slotsOf(conn);
    const metrics = this.#core.metrics;
    const waitConnection = connectionSlots.acquire();
    if (waitConnection) {
      metrics.inboundLimit('maxInFlightPerConnection');
      await waitConnection;
    }
    const waitNode = this.#nodeSlots.acquire();
    if (waitNode) {
      metrics.inboundLimit('maxInFlightPerNode');
      await waitNode;
    }
    return {
      release: () => {
        this.#nodeSlots.release();
        connectionSlots.release();
      },
    };
  }

  #inputProblem(envelope: InformationEnvelope): string | undefined {
    const limits = this.#core.options.limits;
    if (envelope.tid.length > limits.maxTraceIdLength) {
      this.#core.metrics.inboundLimit('maxTraceIdLength');
      return `The traceId (tid) is longer than ${limits.maxTraceIdLength} characters`;
    }
    if (jsonDepthExceeds(envelope.msg, limits.maxMessageDepth)) {
      this.#core.metrics.inboundLimit('maxMessageDepth');
      return `The message (msg) nests deeper than ${limits.maxMessageDepth} levels`;
    }
    return undefined;
  }

  #slotsOf(conn: MatsSocketConnection): InFlightLimiter {
    let slots = this.#connectionSlots.get(conn);
    if (!slots) {
      slots = new InFlightLimiter(this.#core.options.limits.maxInFlightPerConnection);
      this.#connectionSlots.set(conn, slots);
    }
    return slots;
  }
}
