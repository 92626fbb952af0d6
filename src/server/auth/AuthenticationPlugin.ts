import type { IncomingMessage } from 'node:http';

/**
 * The result of an authentication evaluation (docs/protocol.md 7.2 step 8). Build it with the helpers on
 * {@link AuthenticationContext} or with {@link authenticated}, {@link stillValid} and {@link invalidAuthentication}.
 */
export type AuthenticationResult =
  | {
      kind: 'authenticated';
      /** The application's principal object; handed to handlers as is. */
      principal: unknown;
      /** The user id: sessions are owned by it (checked at resume) and counted per user. */
      userId: string;
      /** Debug options (section 5 bits) the user may use. @default 0 */
      allowedDebugOptions: number;
      /**
       * When the node stops accepting this authorization, epoch ms, if the plugin knows (a JWT's `exp`); shown by
       * introspection (`getActiveSessions`).
       */
      authorizationExpiresAt?: number;
    }
  | { kind: 'stillValid' }
  | { kind: 'invalid'; reason: string };

/**
 * Authenticated: the principal, its userId, the debug options the user may request, and (if known) when the
 * authorization expires (epoch ms).
 */
export function authenticated(
  principal: unknown,
  userId: string,
  allowedDebugOptions = 0,
  authorizationExpiresAt?: number,
): AuthenticationResult {
  return authorizationExpiresAt === undefined
    ? { kind: 'authenticated', principal, userId, allowedDebugOptions }
    : { kind: 'authenticated', principal, userId, allowedDebugOptions, authorizationExpiresAt };
}

/** The current authorization (and principal) is still good. Only valid from the reevaluate hooks. */
export function stillValid(): AuthenticationResult {
  return { kind: 'stillValid' };
}

/** Not authenticated: initial authentication closes 1008, reevaluation asks the client for REAUTH. */
export function invalidAuthentication(reason: string): AuthenticationResult {
  return { kind: 'invalid', reason };
}

/** What the server knows about a connection when it creates its plugin instance (at the upgrade). */
export interface ConnectionInfo {
  /** Unique per connection; never sent to the client. */
  readonly connectionId: string;
  /** The HTTP upgrade request (headers, url with query string, socket). */
  readonly request: IncomingMessage;
  /** The `Origin` header, if any. */
  readonly origin: string | undefined;
  /** The peer's address (a proxy's, behind one). */
  readonly remoteAddress: string | undefined;
  /**
   * The first address of the `X-Forwarded-For` header, if any: the client's, behind proxies. Whoever connects can
   * write this header, so it is for display only unless a proxy you run replaces it; the plugin can set a better
   * value with `setOriginatingRemoteAddress`.
   */
  readonly originatingAddress?: string | undefined;
}

/** The live connection, as an authentication hook sees it. */
export interface AuthenticationContext {
  readonly connection: ConnectionInfo;
  /** The session id once HELLO has been processed. */
  readonly sessionId: string | undefined;
  /** The principal of the last successful authentication, if any. */
  readonly principal: unknown;
  /** The userId of the last successful authentication, if any. */
  readonly userId: string | undefined;
  /** The authorization value in force (never log it above debug). */
  readonly authorization: string | undefined;
  /** Epoch ms of the last authenticated/stillValid evaluation (0 before the first). */
  readonly lastAuthenticatedTimestamp: number;
  /** Overrides the remote address introspection shows (e.g. from a header your proxy sets). At most 256 chars. */
  setRemoteAddress(address: string): void;
  /**
   * Overrides the originating (client) address introspection shows, which is by default the first
   * `X-Forwarded-For` address: pick the first one not added by a proxy you trust. At most 256 characters.
   */
  setOriginatingRemoteAddress(address: string): void;
  authenticated(
    principal: unknown,
    userId: string,
    allowedDebugOptions?: number,
    authorizationExpiresAt?: number,
  ): AuthenticationResult;
  stillValid(): AuthenticationResult;
  invalidAuthentication(reason: string): AuthenticationResult;
}

type MaybePromise<T> = T | Promise<T>;

/**
 * One instance per connection (the server calls the {@link AuthenticationPluginFactory} at every upgrade), so an
 * implementation may keep per-connection state, e.g. the last good authorization value.
 */
export interface AuthenticationPlugin {
  /** False refuses the upgrade with HTTP 403. @default accept */
  checkOrigin?(origin: string | undefined): MaybePromise<boolean>;
  /**
   * May read cookies, headers and query parameters, and add headers (e.g. `Set-Cookie`) to the 101 response.
   * False or a thrown error refuses the upgrade with HTTP 403. @default accept
   */
  checkHandshake?(
    request: IncomingMessage,
    responseHeaders: Record<string, string | string[]>,
  ): MaybePromise<boolean>;
  /** After the upgrade. False or a thrown error closes 1008. @default accept */
  onOpen?(connection: ConnectionInfo): MaybePromise<boolean>;
  /** First authentication on a connection: `authenticated` or `invalid` (→ close 1008). */
  initialAuthentication(
    ctx: AuthenticationContext,
    authorization: string,
  ): MaybePromise<AuthenticationResult>;
  /**
   * Later frames: `authenticated` (a new principal and userId; the userId may change), `stillValid`, or
   * `invalid` (→ REAUTH, messages held).
   */
  reevaluateAuthentication(
    ctx: AuthenticationContext,
    authorization: string,
    principal: unknown,
  ): MaybePromise<AuthenticationResult>;
  /**
   * Before each forward round. Anything but authenticated/stillValid sends REAUTH and holds outbox delivery.
   * @default delegates to {@link reevaluateAuthentication}
   */
  reevaluateAuthenticationForOutgoingMessage?(
    ctx: AuthenticationContext,
    authorization: string,
    principal: unknown,
    lastAuthenticatedTimestamp: number,
  ): MaybePromise<AuthenticationResult>;
  /** Whether the user may subscribe to `topicId`: false → SUB_NO_AUTH; a thrown error closes 1008. @default true */
  authorizeUserForTopic?(ctx: AuthenticationContext, topicId: string): MaybePromise<boolean>;
}

/** Creates the plugin instance for one connection. */
export type AuthenticationPluginFactory = (connection: ConnectionInfo) => AuthenticationPlugin;
