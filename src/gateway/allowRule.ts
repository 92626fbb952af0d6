import type { AllowRule } from './GatewayConfig.ts';
import type { GatewayPrincipal } from './GatewayPrincipal.ts';

/**
 * Whether `rule` admits `principal`: no rule admits every authenticated principal; a rule admits one whose userId
 * it lists, OR who has one of its roles, OR one of whose claims has one of the listed values (a claim that is an
 * array matches when any element does). Values compare strictly: the claim `"42"` does not match the value `42`.
 */
export function isAllowed(rule: AllowRule | undefined, principal: GatewayPrincipal | undefined): boolean {
  if (!principal) return false;
  if (!rule) return true;
  if (rule.users.includes(principal.userId)) return true;
  if (principal.roles.some((role) => rule.roles.includes(role))) return true;
  for (const [name, accepted] of Object.entries(rule.claims)) {
    if (!Object.hasOwn(principal.claims, name)) continue;
    const claim = principal.claims[name];
    const values: unknown[] = Array.isArray(claim) ? claim : [claim];
    if (values.some((v) => (accepted as readonly unknown[]).includes(v))) return true;
  }
  return false;
}
