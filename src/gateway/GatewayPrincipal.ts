/**
 * The principal of an authenticated gateway client, whatever authenticated it (the JWT plugin, insecure-dev): what
 * topic rules and endpoint `allow` rules look at.
 */
export interface GatewayPrincipal {
  readonly userId: string;
  readonly roles: readonly string[];
  /** The token's claims (empty for insecure-dev). */
  readonly claims: Readonly<Record<string, unknown>>;
}

/** The principal if `value` has the {@link GatewayPrincipal} shape, else undefined (and rules admit nobody). */
export function asGatewayPrincipal(value: unknown): GatewayPrincipal | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const p = value as Partial<Record<keyof GatewayPrincipal, unknown>>;
  if (typeof p.userId !== 'string' || p.userId.length === 0) return undefined;
  if (!Array.isArray(p.roles) || !p.roles.every((r) => typeof r === 'string')) return undefined;
  if (typeof p.claims !== 'object' || p.claims === null || Array.isArray(p.claims)) return undefined;
  return value as GatewayPrincipal;
}
