import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { ErrorCode } from '../../src/errors.ts';

describe('ErrorCode registry', () => {
  it('is documented in the README error-code table, and the table lists nothing else', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const section = readme.slice(
      readme.indexOf('## Error codes'),
      readme.indexOf('\n## ', readme.indexOf('## Error codes') + 1),
    );
    const documented = [...section.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]);
    expect(documented).to.have.members(Object.values(ErrorCode));
  });

  it('uses each code as its own key', () => {
    for (const [key, value] of Object.entries(ErrorCode)) expect(value).to.equal(key);
  });
});
