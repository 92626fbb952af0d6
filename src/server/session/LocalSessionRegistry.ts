/** The part of a connection the registry needs. */
export interface RegisteredConnection {
  readonly connectionId: string;
}

/**
 * This node's live sessions: session id → the connection holding it. An entry is added **before** the session
 * row is written (docs/protocol.md 8.1 step 3), so a poke that arrives as soon as the row exists finds it local.
 * Removal is guarded by the connection, so an old connection going away never removes its successor's entry.
 */
export class LocalSessionRegistry<C extends RegisteredConnection> {
  readonly #sessions = new Map<string, C>();

  get size(): number {
    return this.#sessions.size;
  }

  get(sessionId: string): C | undefined {
    return this.#sessions.get(sessionId);
  }

  /** Sets (or replaces) the holder of `sessionId`; returns the connection it replaced, if any. */
  set(sessionId: string, connection: C): C | undefined {
    const previous = this.#sessions.get(sessionId);
    this.#sessions.set(sessionId, connection);
    return previous === connection ? undefined : previous;
  }

  /** Removes the entry only if `connection` still holds it. @returns whether it was removed. */
  remove(sessionId: string, connection: C): boolean {
    if (this.#sessions.get(sessionId) !== connection) return false;
    this.#sessions.delete(sessionId);
    return true;
  }

  sessionIds(): string[] {
    return [...this.#sessions.keys()];
  }

  connections(): C[] {
    return [...this.#sessions.values()];
  }
}
