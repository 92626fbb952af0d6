import type { Logger } from '../../../logging.ts';
import {
  authenticated,
  invalidAuthentication,
  stillValid,
  type AuthenticationContext,
  type AuthenticationPlugin,
  type AuthenticationResult,
} from '../AuthenticationPlugin.ts';
import type { JwtVerification, JwtVerifier } from './createJwtVerifier.ts';
import type { ResolvedJwtAuthenticationOptions } from './JwtAuthenticationOptions.ts';
import type { JwtPrincipal } from './JwtPrincipal.ts';

/**
 * The values a connection has verified recently. A client sends one value at a time; a few entries cover the
 * forwarder checking the value in force while a frame brings the next one.
 */
const CACHED_VALUES = 4;

/**
 * The JWT plugin of one connection (docs/authentication.md §3). Each distinct authorization value is verified once;
 * afterwards only its `exp` is compared with the clock, so a token running out turns the next evaluation invalid and
 * the server asks the client for a new one (REAUTH, docs/protocol.md §8.13).
 */
export class JwtAuthenticationPlugin implements AuthenticationPlugin {
  readonly #verify: JwtVerifier;
  readonly #now: () => number;
  readonly #logger: Logger;
  readonly #authorizeTopic: ResolvedJwtAuthenticationOptions['authorizeUserForTopic'];
  readonly #verified = new Map<string, Promise<JwtVerification>>();

  constructor(
    verify: JwtVerifier,
    options: Pick<ResolvedJwtAuthenticationOptions, 'now' | 'logger' | 'authorizeUserForTopic'>,
  ) {
    this.#verify = verify;
    this.#now = options.now;
    this.#logger = options.logger;
    this.#authorizeTopic = options.authorizeUserForTopic;
  }

  initialAuthentication(ctx: AuthenticationContext, authorization: string): Promise<AuthenticationResult> {
    return this.#evaluate(ctx, authorization, undefined);
  }

  reevaluateAuthentication(
    ctx: AuthenticationContext,
    authorization: string,
    principal: unknown,
  ): Promise<AuthenticationResult> {
    return this.#evaluate(ctx, authorization, principal);
  }

  reevaluateAuthenticationForOutgoingMessage(
    ctx: AuthenticationContext,
    authorization: string,
    principal: unknown,
  ): Promise<AuthenticationResult> {
    return this.#evaluate(ctx, authorization, principal);
  }

  async authorizeUserForTopic(ctx: AuthenticationContext, topicId: string): Promise<boolean> {
    if (this.#authorizeTopic === undefined) return true;
    const principal = ctx.principal as JwtPrincipal | undefined;
    if (principal === undefined) return false;
    return (await this.#authorizeTopic(principal, topicId)) === true;
  }

  async #evaluate(
    ctx: AuthenticationContext,
    authorization: string,
    principalInForce: unknown,
  ): Promise<AuthenticationResult> {
    const verification = await this.#verification(authorization);
    const refused = (reason: string): AuthenticationResult => {
      this.#logger.debug({ connectionId: ctx.connection.connectionId, reason }, 'JWT authentication refused');
      return invalidAuthentication(reason);
    };
    if (!verification.ok) return refused(verification.reason);
    if (verification.expiredFromMs !== undefined && this.#now() >= verification.expiredFromMs) {
      return refused('JWT expired');
    }
    const principal = verification.principal;
    // The server lets the userId change within a session (docs/protocol.md §7.2); a token must not hand the
    // session to another user, so a token of another user is refused like an expired one: the client gets REAUTH.
    if (ctx.userId !== undefined && principal.userId !== ctx.userId) {
      return refused("JWT user differs from the session's user");
    }
    return principal === principalInForce
      ? stillValid()
      : authenticated(principal, principal.userId, 0, verification.expiredFromMs);
  }

  /** One verification per distinct value; a failure that may turn out otherwise later is not kept. */
  #verification(authorization: string): Promise<JwtVerification> {
    const cached = this.#verified.get(authorization);
    if (cached !== undefined) {
      this.#verified.delete(authorization);
      this.#verified.set(authorization, cached);
      return cached;
    }
    const pending = this.#verify(authorization).then((verification) => {
      if (!verification.ok && verification.mayChange && this.#verified.get(authorization) === pending) {
        this.#verified.delete(authorization);
      }
      return verification;
    });
    this.#verified.set(authorization, pending);
    if (this.#verified.size > CACHED_VALUES) {
      const oldest = this.#verified.keys().next().value;
      if (oldest !== undefined) this.#verified.delete(oldest);
    }
    return pending;
  }
}
