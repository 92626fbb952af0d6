import type { AuthorizationRequiredEvent, AuthorizationRequiredEventType } from './clientEvents.ts';

/** What {@link ClientAuthorization} needs from its client. */
export interface ClientAuthorizationHost {
  /** Authorization is needed and there is no callback to ask: fatal for the session. */
  onMissingCallback(): void;
  /** The application's callback threw. */
  onCallbackError(error: unknown): void;
}

/**
 * The client's authorization state (docs/protocol.md section 8.13): the current value and its expiry, which value the
 * server has seen last, and the "asked the application" flag that makes the callback run once per need.
 */
export class ClientAuthorization {
  private readonly host: ClientAuthorizationHost;
  private current: string | undefined;
  private expiresAt = -1;
  private roomForLatencyMs = 30_000;
  private lastSent: string | undefined;
  private callback: ((event: AuthorizationRequiredEvent) => void) | undefined;
  private requested: AuthorizationRequiredEventType | undefined;

  constructor(host: ClientAuthorizationHost) {
    this.host = host;
  }

  /** The current value (check {@link usable} before sending it). */
  get value(): string | undefined {
    return this.current;
  }

  /** Whether the application was asked for a new value and has not given one yet. */
  get outstanding(): AuthorizationRequiredEventType | undefined {
    return this.requested;
  }

  /**
   * Stores a new value and clears the outstanding request. Returns true if it answers a REAUTH, in which case the
   * server waits for it and it must go out even with nothing else to send.
   */
  set(value: string, expiresAt: number, roomForLatencyMs: number): boolean {
    const answersReauth = this.requested === 'REAUTHENTICATE';
    this.current = value;
    this.expiresAt = expiresAt;
    this.roomForLatencyMs = roomForLatencyMs;
    this.requested = undefined;
    return answersReauth;
  }

  setCallback(callback: (event: AuthorizationRequiredEvent) => void): void {
    this.callback = callback;
  }

  /** True if the value may be used now; otherwise asks the application for one (once per need). */
  usable(): boolean {
    if (this.current === undefined) {
      this.request('NOT_PRESENT');
      return false;
    }
    if (this.expiresAt !== -1 && this.expiresAt - this.roomForLatencyMs < Date.now()) {
      this.request('EXPIRED');
      return false;
    }
    return this.requested === undefined;
  }

  /**
   * Asks the application for a new value, unless already asked. Sending is held from now on. With
   * `deferCallback` the callback runs after a macrotask (renewAuth: the RESOLVE must be queued first).
   */
  request(type: AuthorizationRequiredEventType, deferCallback = false): void {
    if (this.requested !== undefined) return;
    const callback = this.callback;
    if (!callback) {
      this.host.onMissingCallback();
      return;
    }
    this.requested = type;
    const event: AuthorizationRequiredEvent =
      type === 'EXPIRED' ? { type, currentExpiresAt: this.expiresAt } : { type };
    const invoke = (): void => {
      if (this.requested !== type) return;
      try {
        callback(event);
      } catch (error) {
        this.host.onCallbackError(error);
      }
    };
    if (deferCallback) setTimeout(invoke, 0);
    else invoke();
  }

  /** True if the server has not seen the current value yet (HELLO or the last piggy-backed one). */
  get changedSinceSent(): boolean {
    return this.current !== this.lastSent;
  }

  markSent(): void {
    this.lastSent = this.current;
  }
}
