import { expect } from 'chai';
import type { IncomingMessage } from 'node:http';
import { DummyAuth, dummyAuthValue, parseCookies } from '../../../src/cli/compat/DummyAuth.ts';
import { ALL_DEBUG_OPTIONS } from '../../../src/protocol/debugOptions.ts';
import type {
  AuthenticationContext,
  AuthenticationResult,
} from '../../../src/server/auth/AuthenticationPlugin.ts';

const ctx = {} as AuthenticationContext;
const NOW = 1_800_000_000_000;

function kind(result: AuthenticationResult): string {
  return result.kind;
}

function request(url: string, cookie?: string): IncomingMessage {
  return { url, headers: cookie === undefined ? {} : { cookie } } as IncomingMessage;
}

describe('DummyAuth (docs/compat-test-server.md 3)', () => {
  const auth = (): DummyAuth => new DummyAuth(() => NOW);

  it('initialAuthentication: authenticates DummyAuth:<userId>:<expiry> with the principal of 3.2', () => {
    const result = auth().initialAuthentication(ctx, dummyAuthValue('alice', NOW + 1));
    expect(result).to.deep.equal({
      kind: 'authenticated',
      userId: 'alice',
      allowedDebugOptions: 0,
      principal: {
        name: 'userId:alice',
        userId: 'alice',
        authorizationValue: `DummyAuth:alice:${NOW + 1}`,
        authorizationFromCookie: undefined,
      },
    });
  });

  it('initialAuthentication: invalid for malformed, foreign, failing, non-integer and expired values', () => {
    for (const value of [
      'DummyAuth:a',
      'DummyAuth:a:b:c',
      'Bearer:a:-1',
      'DummyAuth:x_fail_initialAuthentication_y:-1',
      'DummyAuth:a:soon',
      `DummyAuth:a:${NOW - 1}`,
    ]) {
      expect(kind(auth().initialAuthentication(ctx, value)), value).to.equal('invalid');
    }
    expect(kind(auth().initialAuthentication(ctx, `DummyAuth:a:${NOW}`))).to.equal('authenticated');
  });

  it('grants every debug option to enableAllDebugOptions only', () => {
    const result = auth().initialAuthentication(ctx, dummyAuthValue('enableAllDebugOptions'));
    expect(result).to.have.property('allowedDebugOptions', ALL_DEBUG_OPTIONS);
    expect(ALL_DEBUG_OPTIONS).to.equal(195);
  });

  it('reevaluateAuthentication: stillValid for the same value until it expires, re-authenticates a changed one', () => {
    let now = NOW;
    const a = new DummyAuth(() => now);
    const value = dummyAuthValue('bob', NOW + 100);
    a.initialAuthentication(ctx, value);
    expect(kind(a.reevaluateAuthentication(ctx, value))).to.equal('stillValid');
    now = NOW + 100;
    expect(kind(a.reevaluateAuthentication(ctx, value))).to.equal('invalid');
    const other = a.reevaluateAuthentication(ctx, dummyAuthValue('carol'));
    expect(other).to.deep.include({ kind: 'authenticated', userId: 'carol' });
    expect(kind(a.reevaluateAuthentication(ctx, dummyAuthValue('carol')))).to.equal('stillValid');
  });

  it('the colon markers: the incoming marker is not contained in the outgoing one', () => {
    const a = auth();
    const incoming = dummyAuthValue('fail_reevaluateAuthentication');
    const outgoing = dummyAuthValue('fail_reevaluateAuthenticationForOutgoingMessage');
    expect(kind(a.initialAuthentication(ctx, outgoing))).to.equal('authenticated');
    expect(kind(a.reevaluateAuthentication(ctx, outgoing))).to.equal('stillValid');
    expect(kind(a.reevaluateAuthenticationForOutgoingMessage(ctx, outgoing))).to.equal('invalid');
    expect(kind(a.reevaluateAuthentication(ctx, incoming))).to.equal('invalid');
    expect(kind(a.reevaluateAuthenticationForOutgoingMessage(ctx, incoming))).to.equal('invalid');
    expect(kind(a.reevaluateAuthenticationForOutgoingMessage(ctx, dummyAuthValue('ok')))).to.equal(
      'authenticated',
    );
  });

  it('authorizeUserForTopic refuses Test.noAuth.* only', () => {
    expect(auth().authorizeUserForTopic(ctx, 'Test.noAuth.x')).to.equal(false);
    expect(auth().authorizeUserForTopic(ctx, 'Test.topic')).to.equal(true);
  });

  it('checkHandshake: cookie rules of 3.4', () => {
    const encoded = (s: string) => Buffer.from(s).toString('base64').replace(/=+$/, '');
    let headers: Record<string, string | string[]> = {};
    expect(auth().checkHandshake(request('/matssocket?preconnect=true'), headers)).to.equal(true);
    expect(headers).to.deep.equal({});

    headers = {};
    expect(auth().checkHandshake(request('/matssocket', 'a=1'), headers)).to.equal(true);
    expect(headers['Set-Cookie']).to.equal('MatsSocketAuthCookie=; Expires=Thu, 01 Jan 1970 00:00:00 GMT');

    expect(auth().checkHandshake(request('/matssocket?preconnect=true', 'a=1'), {})).to.equal(false);
    const a = auth();
    const value = 'DummyAuth:pre:-1';
    expect(
      a.checkHandshake(
        request('/matssocket?preconnect=true', `x=1; MatsSocketAuthCookie=${encoded(value)}`),
        {},
      ),
    ).to.equal(true);
    expect(a.authorizationFromCookie).to.equal(value);
    expect(a.initialAuthentication(ctx, dummyAuthValue('u'))).to.have.nested.property(
      'principal.authorizationFromCookie',
      value,
    );
    const failing = `MatsSocketAuthCookie=${encoded('DummyAuth:fail_checkHandshake:-1')}`;
    expect(auth().checkHandshake(request('/matssocket?preconnect=true', failing), {})).to.equal(false);
  });

  it('parseCookies splits on ";" and keeps "=" inside values', () => {
    expect([...parseCookies('a=1; b=x=y;c=')]).to.deep.equal([
      ['a', '1'],
      ['b', 'x=y'],
      ['c', ''],
    ]);
  });
});
