import type { IncomingMessage } from 'node:http';
import { ALL_DEBUG_OPTIONS } from '../../protocol/debugOptions.ts';
import {
  authenticated,
  invalidAuthentication,
  stillValid,
  type AuthenticationContext,
  type AuthenticationPlugin,
  type AuthenticationPluginFactory,
  type AuthenticationResult,
} from '../../server/auth/AuthenticationPlugin.ts';

/** The principal DummyAuth hands to handlers (docs/compat-test-server.md 3.2). */
export interface DummyAuthPrincipal {
  /** `userId:<userId>` */
  name: string;
  userId: string;
  /** The authorization value that authenticated it. */
  authorizationValue: string;
  /** The value the preconnect cookie carried into this connection's handshake, if any (3.4). */
  authorizationFromCookie: string | undefined;
}

/** The cookie the preconnect side channel sets and `checkHandshake` consumes. */
export const AUTH_COOKIE_NAME = 'MatsSocketAuthCookie';

const CLEAR_COOKIE = `${AUTH_COOKIE_NAME}=; Expires=Thu, 01 Jan 1970 00:00:00 GMT`;

/** Builds a DummyAuth authorization value: `DummyAuth:<userId>:<expiresEpochMillis or -1>`. */
export function dummyAuthValue(userId: string, expiresEpochMillis = -1): string {
  return `DummyAuth:${userId}:${expiresEpochMillis}`;
}

/** Cookies of a `Cookie` header, by name (first occurrence wins). */
export function parseCookies(header: string): Map<string, string> {
  const cookies = new Map<string, string>();
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    if (name.length > 0 && !cookies.has(name)) cookies.set(name, part.slice(eq + 1).trim());
  }
  return cookies;
}

/**
 * The test authentication plugin of the compatibility server (docs/compat-test-server.md 3): one instance per
 * connection, remembering that connection's current good authorization value, its expiry, and the authorization
 * value carried in by the preconnect cookie. No security whatsoever: for tests and the demo only.
 */
export class DummyAuth implements AuthenticationPlugin {
  readonly #now: () => number;
  #currentGood: string | undefined;
  #expiry = -1;
  #fromCookie: string | undefined;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** A factory creating one DummyAuth per connection, for `MatsSocketServerOptions.authenticationPlugin`. */
  static factory(now: () => number = Date.now): AuthenticationPluginFactory {
    return () => new DummyAuth(now);
  }

  /** The authorization value the preconnect cookie carried into this connection, if any. */
  get authorizationFromCookie(): string | undefined {
    return this.#fromCookie;
  }

  checkOrigin(): boolean {
    return true;
  }

  checkHandshake(request: IncomingMessage, responseHeaders: Record<string, string | string[]>): boolean {
    const cookieHeader = request.headers.cookie;
    if (cookieHeader === undefined) return true;
    responseHeaders['Set-Cookie'] = CLEAR_COOKIE;
    const query = new URL(request.url ?? '/', 'http://localhost').searchParams;
    if (!query.has('preconnect')) return true;
    const cookie = parseCookies(cookieHeader).get(AUTH_COOKIE_NAME);
    if (cookie === undefined) return false;
    // Buffer accepts the standard alphabet with or without '=' padding.
    const value = Buffer.from(cookie, 'base64').toString('utf8');
    this.#fromCookie = value;
    return !value.includes(':fail_checkHandshake:');
  }

  onOpen(): boolean {
    return true;
  }

  initialAuthentication(_ctx: AuthenticationContext, value: string): AuthenticationResult {
    const parts = value.split(':');
    if (parts.length !== 3) {
      return invalidAuthentication(
        "The Authorization should read 'DummyAuth:<userId>:<expiresMillis>': Supplied is not three parts.",
      );
    }
    const [kind, userId, expiresText] = parts as [string, string, string];
    if (kind !== 'DummyAuth') {
      return invalidAuthentication("The Authorization should read 'DummyAuth:<userId>:<expiresMillis>'.");
    }
    if (userId.includes('fail_initialAuthentication')) {
      return invalidAuthentication('Asked to fail in initialAuthentication(..)');
    }
    if (!/^-?\d+$/.test(expiresText)) {
      return invalidAuthentication('The expiry of the DummyAuth is not an integer.');
    }
    const expiry = Number(expiresText);
    if (expiry !== -1 && expiry < this.#now()) {
      return invalidAuthentication('This DummyAuth is too old (initialAuthentication).');
    }
    this.#currentGood = value;
    this.#expiry = expiry;
    const principal: DummyAuthPrincipal = {
      name: `userId:${userId}`,
      userId,
      authorizationValue: value,
      authorizationFromCookie: this.#fromCookie,
    };
    return authenticated(principal, userId, userId === 'enableAllDebugOptions' ? ALL_DEBUG_OPTIONS : 0);
  }

  reevaluateAuthentication(ctx: AuthenticationContext, value: string): AuthenticationResult {
    if (value.includes(':fail_reevaluateAuthentication:')) {
      return invalidAuthentication('Asked to fail in reevaluateAuthentication(..)');
    }
    if (value === this.#currentGood) {
      return this.#expiry !== -1 && this.#expiry <= this.#now()
        ? invalidAuthentication('This DummyAuth is too old (reevaluateAuthentication).')
        : stillValid();
    }
    return this.initialAuthentication(ctx, value);
  }

  reevaluateAuthenticationForOutgoingMessage(
    ctx: AuthenticationContext,
    value: string,
  ): AuthenticationResult {
    if (value.includes(':fail_reevaluateAuthenticationForOutgoingMessage:')) {
      return invalidAuthentication('Asked to fail in reevaluateAuthenticationForOutgoingMessage(..)');
    }
    return this.reevaluateAuthentication(ctx, value);
  }

  authorizeUserForTopic(_ctx: AuthenticationContext, topicId: string): boolean {
    return !topicId.startsWith('Test.noAuth.');
  }
}
