import { expect } from 'chai';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createAdminAccess } from '../../../src/ops/adminAccess.ts';
import { createBearerCheck, hostNameOf, type AccessRefusal } from '../../../src/ops/bearerCheck.ts';

const TOKEN = 'a-token-of-sufficient-length';

/** Runs the guard on a request with `headers`; returns the status (200 when let through) and the refusals. */
function check(
  headers: Record<string, string>,
  allowedHosts: string[] = [],
): { status: number; refused: AccessRefusal[] } {
  const refused: AccessRefusal[] = [];
  const access = createAdminAccess({ token: TOKEN, allowedHosts, onRefused: (r) => refused.push(r) });
  let status = 200;
  const response = {
    writeHead(s: number) {
      status = s;
      return this;
    },
    end() {
      return this;
    },
  } as unknown as ServerResponse;
  const passed = access({ headers } as IncomingMessage, response);
  expect(passed).to.equal(status === 200);
  return { status, refused };
}

describe('createAdminAccess', () => {
  it('lets a loopback Host with the right bearer token through', () => {
    for (const host of ['localhost:8080', '127.0.0.1', '[::1]:80', 'LOCALHOST.'])
      expect(check({ host, authorization: `Bearer ${TOKEN}` }).status, host).to.equal(200);
  });

  it('refuses a missing or malformed Authorization with 401 unauthenticated', () => {
    for (const authorization of [undefined, '', TOKEN, `Basic ${TOKEN}`, 'Bearer '])
      expect(
        check({ host: 'localhost', ...(authorization === undefined ? {} : { authorization }) }),
      ).to.deep.equal({
        status: 401,
        refused: ['unauthenticated'],
      });
  });

  it('refuses a wrong token, also a prefix or an extension of the right one, with 401 bad_token', () => {
    for (const token of [TOKEN.slice(0, -1), `${TOKEN}x`, TOKEN.toUpperCase()])
      expect(check({ host: 'localhost', authorization: `Bearer ${token}` })).to.deep.equal({
        status: 401,
        refused: ['bad_token'],
      });
  });

  it('refuses a foreign, missing or malformed Host with 403 before looking at the token', () => {
    for (const host of ['evil.example', 'localhost.evil.example', '127.0.0.1.nip.io:80', 'a b', ''])
      expect(check({ host, authorization: `Bearer ${TOKEN}` }), host).to.deep.equal({
        status: 403,
        refused: ['host'],
      });
    expect(check({ authorization: `Bearer ${TOKEN}` }).status).to.equal(403);
    expect(
      check({ host: 'Admin.Example:443', authorization: `Bearer ${TOKEN}` }, ['admin.example']).status,
    ).to.equal(200);
  });

  it('rejects short or header-unsafe tokens', () => {
    for (const token of ['short', 'sixteen chars  x', `${TOKEN}\n`])
      expect(() => createAdminAccess({ token })).to.throw(RangeError);
  });
});

describe('createBearerCheck', () => {
  const request = (headers: Record<string, string>) => ({ headers }) as IncomingMessage;

  it('without allowedHosts checks only the token, whatever the Host', () => {
    const refused: AccessRefusal[] = [];
    const check = createBearerCheck({ token: TOKEN, onRefused: (r) => refused.push(r) });
    expect(check(request({ host: 'backend.internal:8080', authorization: `Bearer ${TOKEN}` }))).to.equal(
      undefined,
    );
    expect(check(request({ authorization: `Bearer ${TOKEN}` }))).to.equal(undefined);
    expect(check(request({ host: 'backend.internal' }))).to.equal('unauthenticated');
    expect(check(request({ host: 'x', authorization: `Bearer ${TOKEN}x` }))).to.equal('bad_token');
    expect(refused).to.deep.equal(['unauthenticated', 'bad_token']);
  });

  it('with allowedHosts refuses other hosts before looking at the token', () => {
    const check = createBearerCheck({ token: TOKEN, allowedHosts: ['api.example'] });
    expect(check(request({ host: 'api.example', authorization: `Bearer ${TOKEN}` }))).to.equal(undefined);
    expect(check(request({ host: '127.0.0.1:1', authorization: `Bearer ${TOKEN}` }))).to.equal(undefined);
    expect(check(request({ host: 'evil.example', authorization: `Bearer ${TOKEN}` }))).to.equal('host');
  });
});

describe('hostNameOf', () => {
  it('drops the port and lower-cases; undefined for what no client sends', () => {
    expect(hostNameOf('Example.COM:8080')).to.equal('example.com');
    expect(hostNameOf('[::1]:8080')).to.equal('[::1]');
    expect(hostNameOf('[::1]')).to.equal('[::1]');
    expect(hostNameOf(undefined)).to.equal(undefined);
    expect(hostNameOf('::1')).to.equal(undefined);
    expect(hostNameOf('a@b')).to.equal(undefined);
  });
});
