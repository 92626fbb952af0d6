import { expect } from 'chai';
import { ConfigError } from '../../../src/errors.ts';
import { isAllowed } from '../../../src/gateway/allowRule.ts';
import type { AllowRule, TopicRule } from '../../../src/gateway/GatewayConfig.ts';
import type { GatewayPrincipal } from '../../../src/gateway/GatewayPrincipal.ts';
import { TopicAuthorizer } from '../../../src/gateway/TopicAuthorizer.ts';
import { parseTopicPattern } from '../../../src/gateway/topicPattern.ts';

function principal(
  userId: string,
  roles: string[] = [],
  claims: Record<string, unknown> = {},
): GatewayPrincipal {
  return { userId, roles, claims };
}

function allow(rule: Partial<AllowRule>): AllowRule {
  return { users: [], roles: [], claims: {}, ...rule };
}

function authorizer(...rules: (string | [string, Partial<AllowRule>])[]): TopicAuthorizer {
  return new TopicAuthorizer(
    rules.map((r): TopicRule =>
      typeof r === 'string' ? { pattern: r, allow: undefined } : { pattern: r[0], allow: allow(r[1]) },
    ),
  );
}

describe('TopicAuthorizer', () => {
  const alice = principal('alice');

  it('refuses every topic without rules', () => {
    expect(authorizer().maySubscribe(alice, 'news.sport')).to.equal(false);
  });

  it('* matches within one segment, a lone * one non-empty segment', () => {
    const a = authorizer('news.*', 'prices.eu-*.daily');
    expect(a.maySubscribe(alice, 'news.sport')).to.equal(true);
    expect(a.maySubscribe(alice, 'news')).to.equal(false);
    expect(a.maySubscribe(alice, 'news.')).to.equal(false);
    expect(a.maySubscribe(alice, 'news.sport.football')).to.equal(false);
    expect(a.maySubscribe(alice, 'newsXsport')).to.equal(false);
    expect(a.maySubscribe(alice, 'prices.eu-west.daily')).to.equal(true);
    expect(a.maySubscribe(alice, 'prices.eu-.daily')).to.equal(true);
    expect(a.maySubscribe(alice, 'prices.us-east.daily')).to.equal(false);
  });

  it('** as the last segment matches one or more segments', () => {
    const a = authorizer('news.**');
    expect(a.maySubscribe(alice, 'news.sport')).to.equal(true);
    expect(a.maySubscribe(alice, 'news.sport.football.live')).to.equal(true);
    expect(a.maySubscribe(alice, 'news')).to.equal(false);
    expect(a.maySubscribe(alice, 'newsroom.x')).to.equal(false);
  });

  it('{userId} admits only the user the topic names', () => {
    const a = authorizer('user.{userId}.*');
    expect(a.maySubscribe(alice, 'user.alice.inbox')).to.equal(true);
    expect(a.maySubscribe(alice, 'user.bob.inbox')).to.equal(false);
    expect(a.maySubscribe(principal('bob'), 'user.bob.inbox')).to.equal(true);
    // Regex characters in a user id are literal.
    expect(a.maySubscribe(principal('a+'), 'user.aa.inbox')).to.equal(false);
    expect(a.maySubscribe(principal('a+'), 'user.a+.inbox')).to.equal(true);
  });

  it('a placeholder value containing a dot (or empty) matches nothing', () => {
    const a = authorizer('user.{userId}.**');
    expect(a.maySubscribe(principal('a.b'), 'user.a.b.inbox')).to.equal(false);
    expect(a.maySubscribe(principal('a'), 'user.a.b.inbox')).to.equal(true);
    const t = authorizer('tenant.{claims.tenant}.orders');
    expect(t.maySubscribe(principal('x', [], { tenant: '' }), 'tenant..orders')).to.equal(false);
  });

  it('{claims.<name>} takes the claim (string or number); a missing claim matches nothing', () => {
    const a = authorizer('tenant.{claims.tenant}.orders', 'shard.{claims.https://example.com/shard}.x');
    expect(a.maySubscribe(principal('u', [], { tenant: 'acme' }), 'tenant.acme.orders')).to.equal(true);
    expect(a.maySubscribe(principal('u', [], { tenant: 'acme' }), 'tenant.other.orders')).to.equal(false);
    expect(a.maySubscribe(principal('u', [], { tenant: 42 }), 'tenant.42.orders')).to.equal(true);
    expect(a.maySubscribe(principal('u', [], { tenant: ['acme'] }), 'tenant.acme.orders')).to.equal(false);
    expect(a.maySubscribe(principal('u'), 'tenant.undefined.orders')).to.equal(false);
    expect(a.maySubscribe(principal('u', [], { 'https://example.com/shard': 7 }), 'shard.7.x')).to.equal(
      true,
    );
  });

  it('allow admits listed users, OR holders of a role, OR a listed claim value', () => {
    const a = authorizer(['ops.**', { users: ['root'], roles: ['ops', 'sre'], claims: { dept: ['it', 7] } }]);
    expect(a.maySubscribe(principal('root'), 'ops.alerts')).to.equal(true);
    expect(a.maySubscribe(principal('x', ['sre']), 'ops.alerts')).to.equal(true);
    expect(a.maySubscribe(principal('x', [], { dept: 'it' }), 'ops.alerts')).to.equal(true);
    expect(a.maySubscribe(principal('x', [], { dept: ['hr', 7] }), 'ops.alerts')).to.equal(true);
    expect(a.maySubscribe(principal('x', [], { dept: '7' }), 'ops.alerts')).to.equal(false);
    expect(a.maySubscribe(principal('x', ['dev'], { dept: 'hr' }), 'ops.alerts')).to.equal(false);
  });

  it('any matching rule that admits is enough', () => {
    const a = authorizer(
      ['reports.**', { roles: ['finance'] }],
      ['reports.public.*', {}],
      'reports.public.*',
    );
    expect(a.maySubscribe(alice, 'reports.public.q1')).to.equal(true);
    expect(a.maySubscribe(alice, 'reports.secret.q1')).to.equal(false);
    expect(a.maySubscribe(principal('f', ['finance']), 'reports.secret.q1')).to.equal(true);
  });

  it('a principal without the gateway shape is refused everything', () => {
    const a = authorizer('news.*');
    for (const p of [undefined, null, 'alice', { userId: 'alice' }, { userId: '', roles: [], claims: {} }])
      expect(a.maySubscribe(p, 'news.sport'), JSON.stringify(p)).to.equal(false);
  });

  it('refuses an invalid pattern at construction (the loader reports them with lines first)', () => {
    expect(() => authorizer('a..b'))
      .to.throw(ConfigError)
      .with.property('field', 'topics[0].pattern');
  });
});

describe('parseTopicPattern', () => {
  it('names what is wrong', () => {
    const error = (p: string): string | undefined => {
      const r = parseTopicPattern(p);
      return 'error' in r ? r.error : undefined;
    };
    expect(error('news.*')).to.equal(undefined);
    expect(error('user.{userId}.**')).to.equal(undefined);
    expect(error('')).to.match(/1 to 256/);
    expect(error('a b')).to.match(/white space/);
    expect(error('.a')).to.match(/empty segment/);
    expect(error('a.**.b')).to.match(/last segment/);
    expect(error('a.b**')).to.match(/whole segment/);
    expect(error('user.x{userId}')).to.match(/placeholder/);
    expect(error('user.{name}')).to.match(/placeholder/);
    expect(error('user.{userId')).to.match(/not closed/);
    expect(error('user.userId}')).to.match(/no '\{'/);
  });
});

describe('isAllowed', () => {
  it('without a rule admits any principal, and never a missing one', () => {
    expect(isAllowed(undefined, principal('a'))).to.equal(true);
    expect(isAllowed(undefined, undefined)).to.equal(false);
    expect(isAllowed(allow({ users: ['a'] }), undefined)).to.equal(false);
  });

  it('does not read inherited properties as claims', () => {
    expect(isAllowed(allow({ claims: { toString: ['x'] } }), principal('a'))).to.equal(false);
  });
});
