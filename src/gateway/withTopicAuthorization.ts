import type { AuthenticationPluginFactory } from '../server/auth/AuthenticationPlugin.ts';

/**
 * Gives every plugin `factory` makes the gateway's topic decision (`authorizeUserForTopic`), replacing the plugin's
 * own: in a gateway, topics are authorized by the configuration's rules, whichever plugin authenticates.
 */
export function withTopicAuthorization(
  factory: AuthenticationPluginFactory,
  authorizeTopic: (principal: unknown, topicId: string) => boolean,
): AuthenticationPluginFactory {
  return (connection) => {
    const plugin = factory(connection);
    plugin.authorizeUserForTopic = (ctx, topicId) => authorizeTopic(ctx.principal, topicId);
    return plugin;
  };
}
