import {
  authenticated,
  invalidAuthentication,
  stillValid,
  type AuthenticationPluginFactory,
  type AuthenticationResult,
} from '../server/auth/AuthenticationPlugin.ts';
import type { GatewayPrincipal } from './GatewayPrincipal.ts';

/** What insecure-dev accepts as authorization value: `[Bearer ]<userId>[:<role>,<role>…]`. */
const DEV_VALUE = /^(?:Bearer\s+)?([^\s:]{1,256})(?::([^\s:]{1,2048}))?$/i;

/** The principal an insecure-dev authorization value names, or the reason it names none. */
export function parseInsecureDevValue(value: string): GatewayPrincipal | { error: string } {
  const m = DEV_VALUE.exec(value.trim());
  if (!m) {
    return {
      error: "insecure-dev: the authorization value must read '<userId>' or '<userId>:<role>,<role>'",
    };
  }
  const roles = (m[2] ?? '').split(',').filter((r) => r.length > 0);
  return { userId: m[1]!, roles, claims: {} };
}

/**
 * Development authentication (docs/gateway.md §6.2): the client's authorization value is taken at its word as
 * `<userId>` or `<userId>:<role>,<role>`; nothing is verified, so anyone reaching the node can be anyone. The
 * configuration refuses it on a non-loopback address unless told otherwise, and the node logs a warning at start.
 */
export function insecureDevAuthentication(): AuthenticationPluginFactory {
  const evaluate = (value: string): AuthenticationResult => {
    const principal = parseInsecureDevValue(value);
    return 'error' in principal
      ? invalidAuthentication(principal.error)
      : authenticated(principal, principal.userId);
  };
  return () => {
    let current: string | undefined;
    return {
      initialAuthentication(_ctx, value) {
        const result = evaluate(value);
        if (result.kind === 'authenticated') current = value;
        return result;
      },
      reevaluateAuthentication(_ctx, value) {
        if (value === current) return stillValid();
        const result = evaluate(value);
        if (result.kind === 'authenticated') current = value;
        return result;
      },
    };
  };
}
