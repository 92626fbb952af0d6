import type { AuthenticationPluginFactory } from '../AuthenticationPlugin.ts';
import { createJwtVerifier } from './createJwtVerifier.ts';
import { JwtAuthenticationPlugin } from './JwtAuthenticationPlugin.ts';
import {
  resolveJwtAuthenticationOptions,
  type JwtAuthenticationOptions,
} from './JwtAuthenticationOptions.ts';

/**
 * Built-in JWT authentication (docs/authentication.md): give the result as `authenticationPlugin` of
 * `MatsSocketServer`. The client's authorization value is `Bearer <jwt>` or the bare JWT; a verified token
 * authenticates its user claim with a `JwtPrincipal` as principal; an expired token makes the server ask the
 * client for a new one (REAUTH), and a token of another user never takes over a session.
 *
 * ```ts
 * new MatsSocketServer({ ..., authenticationPlugin: jwtAuthentication({ algorithms: ['RS256'], jwksUrl }) });
 * ```
 *
 * The options are validated here, once; the key (or the JWKS and its cache) is shared by all connections.
 * @throws ConfigError (code `CONFIG_INVALID`) naming the offending option.
 */
export function jwtAuthentication(options: JwtAuthenticationOptions): AuthenticationPluginFactory {
  const resolved = resolveJwtAuthenticationOptions(options);
  const verify = createJwtVerifier(resolved);
  return () => new JwtAuthenticationPlugin(verify, resolved);
}
