import { expect } from 'chai';
import { findCycles, forbiddenImports, importGraph } from '../../../scripts/checkCycles.ts';

describe('scripts/checkCycles (npm run lint)', () => {
  it('finds an import against the direction rules, and none in the repository', () => {
    const graph = new Map<string, string[]>([
      ['src/server/inbound/A.ts', ['src/server/messaging/S.ts', 'src/server/outbound/B.ts']],
      ['src/server/outbound/B.ts', ['src/server/messaging/S.ts']],
      ['src/server/messaging/S.ts', []],
    ]);
    expect(forbiddenImports(graph)).to.deep.equal([
      'src/server/inbound/A.ts -> src/server/outbound/B.ts: inbound must not reach into outbound',
    ]);
    expect(forbiddenImports(importGraph())).to.deep.equal([]);
  });

  it('finds a cycle', () => {
    const graph = new Map<string, string[]>([
      ['a.ts', ['b.ts']],
      ['b.ts', ['a.ts']],
    ]);
    expect(findCycles(graph).map((c) => [...c].sort())).to.deep.equal([['a.ts', 'b.ts']]);
  });
});
