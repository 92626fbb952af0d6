import { expect } from 'chai';
import { groupChunks } from '../../../src/store/sql/sessionIdGroups.ts';

describe('groupChunks()', () => {
  it('merges entries of one session, drops duplicates and empty entries', () => {
    expect(
      groupChunks(
        [
          { sessionId: 'a', ids: ['1', '2'] },
          { sessionId: 'b', ids: [] },
          { sessionId: 'a', ids: ['2', '3'] },
        ],
        10,
      ),
    ).to.deep.equal([[{ sessionId: 'a', ids: ['1', '2', '3'] }]]);
    expect(groupChunks([], 10)).to.deep.equal([]);
  });

  it('fills statements up to the chunk size in total ids, splitting long sessions', () => {
    const groups = groupChunks(
      [
        { sessionId: 'a', ids: ['1', '2', '3', '4', '5'] },
        { sessionId: 'b', ids: ['1', '2'] },
        { sessionId: 'c', ids: ['1'] },
      ],
      3,
    );
    expect(groups).to.deep.equal([
      [{ sessionId: 'a', ids: ['1', '2', '3'] }],
      [
        { sessionId: 'a', ids: ['4', '5'] },
        { sessionId: 'b', ids: ['1'] },
      ],
      [
        { sessionId: 'b', ids: ['2'] },
        { sessionId: 'c', ids: ['1'] },
      ],
    ]);
    for (const g of groups) expect(g.reduce((n, e) => n + e.ids.length, 0)).to.be.at.most(3);
  });
});
