import { isAllowed } from './allowRule.ts';
import type { TopicRule } from './GatewayConfig.ts';
import { asGatewayPrincipal } from './GatewayPrincipal.ts';
import { parseTopicPattern, matchesTopic, type TopicPattern } from './topicPattern.ts';
import { ConfigError } from '../errors.ts';

/**
 * Decides topic subscriptions from the configuration's `topics` rules (docs/gateway.md §5): a subscription is
 * allowed when at least one rule's pattern matches the topic for this principal and its `allow` admits the
 * principal. No matching rule, or a principal without the gateway shape, is a refusal (SUB_NO_AUTH).
 */
export class TopicAuthorizer {
  readonly #rules: readonly { pattern: TopicPattern; rule: TopicRule }[];

  /** @throws ConfigError naming the first invalid pattern (the configuration loader reports them all first). */
  constructor(rules: readonly TopicRule[]) {
    this.#rules = rules.map((rule, i) => {
      const pattern = parseTopicPattern(rule.pattern);
      if ('error' in pattern) throw new ConfigError(`topics[${i}].pattern`, pattern.error);
      return { pattern, rule };
    });
  }

  /** Whether `principal` (an authenticated client's, as the plugin returned it) may subscribe to `topicId`. */
  maySubscribe(principal: unknown, topicId: string): boolean {
    const p = asGatewayPrincipal(principal);
    if (!p) return false;
    return this.#rules.some(
      ({ pattern, rule }) => matchesTopic(pattern, topicId, p) && isAllowed(rule.allow, p),
    );
  }
}
