import type { ConnectionLimit } from '../ServerMetrics.ts';

export interface UnauthenticatedLimits {
  /** `limits.maxUnauthenticatedConnections`. */
  total: number;
  /** `limits.maxUnauthenticatedConnectionsPerIp`. */
  perIp: number;
}

/**
 * Counts the connections of a node that have no established session yet, in total and per remote address, so
 * that the memory unauthenticated peers can hold (each at most `preHelloMaxSocketBytes` read, plus what `ws`
 * inflates from that) has a ceiling. An upgrade takes a slot; the slot is given back once, when the session is
 * established or the socket closes, whichever comes first.
 */
export class UnauthenticatedConnections {
  readonly #limits: UnauthenticatedLimits;
  readonly #byIp = new Map<string, number>();
  #total = 0;

  constructor(limits: UnauthenticatedLimits) {
    this.#limits = limits;
  }

  /** Connections holding a slot now. */
  get size(): number {
    return this.#total;
  }

  /** A release function, or the limit that refuses the connection. */
  admit(ip: string): (() => void) | ConnectionLimit {
    if (this.#total >= this.#limits.total) return 'unauthenticated_total';
    const ofIp = this.#byIp.get(ip) ?? 0;
    if (ofIp >= this.#limits.perIp) return 'unauthenticated_per_ip';
    this.#total++;
    this.#byIp.set(ip, ofIp + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#total--;
      const left = (this.#byIp.get(ip) ?? 1) - 1;
      if (left > 0) this.#byIp.set(ip, left);
      else this.#byIp.delete(ip);
    };
  }
}
