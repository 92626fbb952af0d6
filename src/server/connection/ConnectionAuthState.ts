import {
  authenticated,
  invalidAuthentication,
  stillValid,
  type AuthenticationContext,
  type AuthenticationResult,
  type ConnectionInfo,
} from '../auth/AuthenticationPlugin.ts';
import type { MatsSocketConnection } from './MatsSocketConnection.ts';

/**
 * The authentication state of one connection (docs/protocol.md 7.2 steps 8-9 and 8.13) and the
 * {@link AuthenticationContext} its plugin sees. Authorization values are never logged above debug.
 */
export class ConnectionAuthState implements AuthenticationContext {
  readonly #conn: MatsSocketConnection;
  principal: unknown = undefined;
  userId: string | undefined;
  authorization: string | undefined;
  allowedDebugOptions = 0;
  lastAuthenticatedTimestamp = 0;
  /** From the last `authenticated` result, if the plugin told. */
  authorizationExpiresAt: number | undefined;
  remoteAddress: string | undefined;
  originatingAddress: string | undefined;
  /** The authorization value a REAUTH was last sent for (incoming path); undefined when none is outstanding. */
  reauthSentFor: string | undefined;
  /** True while incoming envelopes are held waiting for a good authorization. */
  reauthOutstanding = false;
  /** True while outbox delivery is held for REAUTH (outgoing path). */
  outgoingHeld = false;

  constructor(conn: MatsSocketConnection) {
    this.#conn = conn;
    this.remoteAddress = conn.info.remoteAddress;
    this.originatingAddress = conn.info.originatingAddress;
  }

  setRemoteAddress(address: string): void {
    this.remoteAddress = boundedAddress(address);
  }

  setOriginatingRemoteAddress(address: string): void {
    this.originatingAddress = boundedAddress(address);
  }

  get connection(): ConnectionInfo {
    return this.#conn.info;
  }

  get sessionId(): string | undefined {
    return this.#conn.sessionId;
  }

  get hasPrincipal(): boolean {
    return this.userId !== undefined;
  }

  authenticated(
    principal: unknown,
    userId: string,
    allowedDebugOptions = 0,
    authorizationExpiresAt?: number,
  ): AuthenticationResult {
    return authenticated(principal, userId, allowedDebugOptions, authorizationExpiresAt);
  }

  stillValid(): AuthenticationResult {
    return stillValid();
  }

  invalidAuthentication(reason: string): AuthenticationResult {
    return invalidAuthentication(reason);
  }

  /**
   * Records a successful evaluation: `authenticated` replaces value, principal, userId and allowed set;
   * `stillValid` keeps them (with the value in force). Either clears the REAUTH state; returns true if outbox
   * delivery was held and is now released (the caller pokes the forwarder).
   */
  accept(result: AuthenticationResult, value: string): boolean {
    if (result.kind === 'authenticated') {
      this.principal = result.principal;
      this.userId = result.userId;
      this.allowedDebugOptions = result.allowedDebugOptions | 0;
      this.authorizationExpiresAt = result.authorizationExpiresAt;
    }
    this.authorization = value;
    this.lastAuthenticatedTimestamp = this.#conn.core.now();
    this.reauthSentFor = undefined;
    this.reauthOutstanding = false;
    const released = this.outgoingHeld;
    this.outgoingHeld = false;
    return released;
  }
}

/** True for a well-formed plugin result (anything else from a plugin closes 1008). */
export function isAuthenticationResult(value: unknown): value is AuthenticationResult {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as {
    kind?: unknown;
    userId?: unknown;
    reason?: unknown;
    allowedDebugOptions?: unknown;
    authorizationExpiresAt?: unknown;
  };
  switch (r.kind) {
    case 'authenticated':
      return (
        typeof r.userId === 'string' &&
        (r.allowedDebugOptions === undefined || typeof r.allowedDebugOptions === 'number') &&
        (r.authorizationExpiresAt === undefined || Number.isFinite(r.authorizationExpiresAt))
      );
    case 'stillValid':
      return true;
    case 'invalid':
      return true;
    default:
      return false;
  }
}

/** Addresses introspection keeps are the plugin's strings: bounded, like every other recorded field. */
function boundedAddress(address: string): string | undefined {
  return typeof address === 'string' ? address.slice(0, 256) : undefined;
}
