import { expect } from 'chai';
import type { AuthenticationContext, ConnectionInfo } from '../../../src/server/auth/AuthenticationPlugin.ts';
import {
  insecureDevAuthentication,
  parseInsecureDevValue,
} from '../../../src/gateway/insecureDevAuthentication.ts';
import { withTopicAuthorization } from '../../../src/gateway/withTopicAuthorization.ts';

const ctx = { principal: { userId: 'alice', roles: [], claims: {} } } as unknown as AuthenticationContext;
const connection = {} as ConnectionInfo;

describe('insecureDevAuthentication', () => {
  it('takes the value as <userId> or <userId>:<role>,<role> (optionally after Bearer)', () => {
    expect(parseInsecureDevValue('alice')).to.deep.equal({ userId: 'alice', roles: [], claims: {} });
    expect(parseInsecureDevValue('Bearer bob:support,ops')).to.deep.equal({
      userId: 'bob',
      roles: ['support', 'ops'],
      claims: {},
    });
    for (const bad of ['', 'a b', 'a:b:c', ':role', 'x'.repeat(257)])
      expect(parseInsecureDevValue(bad), bad).to.have.property('error');
  });

  it('authenticates at its word, keeps a repeated value, and re-authenticates a changed one', async () => {
    const plugin = insecureDevAuthentication()(connection);
    expect(await plugin.initialAuthentication(ctx, 'alice:admin')).to.deep.equal({
      kind: 'authenticated',
      principal: { userId: 'alice', roles: ['admin'], claims: {} },
      userId: 'alice',
      allowedDebugOptions: 0,
    });
    expect(await plugin.reevaluateAuthentication(ctx, 'alice:admin', undefined)).to.deep.equal({
      kind: 'stillValid',
    });
    expect(await plugin.reevaluateAuthentication(ctx, 'carol', undefined)).to.include({
      kind: 'authenticated',
      userId: 'carol',
    });
    expect(await plugin.initialAuthentication(ctx, 'a b')).to.include({ kind: 'invalid' });
  });

  it('withTopicAuthorization gives any plugin the gateway topic decision', async () => {
    const seen: [unknown, string][] = [];
    const factory = withTopicAuthorization(insecureDevAuthentication(), (p, topic) => {
      seen.push([p, topic]);
      return topic === 'ok';
    });
    const plugin = factory(connection);
    expect(await plugin.authorizeUserForTopic!(ctx, 'ok')).to.equal(true);
    expect(await plugin.authorizeUserForTopic!(ctx, 'no')).to.equal(false);
    expect(seen).to.deep.equal([
      [ctx.principal, 'ok'],
      [ctx.principal, 'no'],
    ]);
  });
});
