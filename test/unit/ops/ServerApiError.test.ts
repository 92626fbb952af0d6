import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { ServerApiError, ServerApiErrorCode, serverApiStatus } from '../../../src/ops/ServerApiError.ts';

describe('ServerApiErrorCode', () => {
  it('is the table of docs/operations.md §6.3, with the same statuses, and the table lists nothing else', () => {
    const doc = readFileSync(new URL('../../../docs/operations.md', import.meta.url), 'utf8');
    const start = doc.indexOf('### 6.3 Errors');
    const section = doc.slice(start, doc.indexOf('\n### ', start + 1));
    const rows = [...section.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1], Number(m[2])]);
    expect(rows.map(([code]) => code)).to.have.members(Object.values(ServerApiErrorCode));
    for (const [code, status] of rows) {
      expect(serverApiStatus(code as ServerApiErrorCode), String(code)).to.equal(status);
    }
  });

  it('uses each code as its own key; an error carries its status', () => {
    for (const [key, value] of Object.entries(ServerApiErrorCode)) expect(value).to.equal(key);
    const err = new ServerApiError('BODY_TOO_LARGE', 'too large', { cause: new Error('x') });
    expect(err).to.include({ code: 'BODY_TOO_LARGE', status: 413 });
    expect(err.cause).to.be.instanceOf(Error);
  });
});
