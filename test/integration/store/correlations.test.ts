import { expect } from 'chai';
import { MessageIdAlreadyExistsError } from '../../../src/errors.ts';
import type { SqlClusterStore } from '../../../src/store/SqlClusterStore.ts';
import type { RequestCorrelationInput } from '../../../src/store/storeTypes.ts';
import { describeEachDatabase } from '../../../harness/databases.ts';
import { expectRejection, newSession, sid, useStoreFixture } from './storeFixture.ts';

describeEachDatabase('ClusterStoreAndForward request correlations', (db) => {
  const f = useStoreFixture(db);

  function corr(sessionId: string, smid: string, expiresTs: number): RequestCorrelationInput {
    return {
      sessionId,
      smid,
      requestTs: expiresTs - 1000,
      expiresTs,
      replyTerminatorId: 'Test.terminator',
      clientEndpointId: 'ClientSide.endpoint',
      traceId: `trace-${smid}`,
      correlationText: `ctx-${smid}`,
      correlationBinary: Buffer.from(smid),
    };
  }

  async function session(): Promise<string> {
    const s = newSession();
    await f.store.registerNewSession(s);
    return s.sessionId;
  }

  it('stores, gets-and-deletes exactly once, and refuses for a gone session', async () => {
    const s = await session();
    expect(await f.store.storeRequestCorrelation(corr(s, 'c1', 5000))).to.be.true;
    await expectRejection(f.store.storeRequestCorrelation(corr(s, 'c1', 5000)), MessageIdAlreadyExistsError);
    const got = await f.store.getAndDeleteRequestCorrelation(s, 'c1');
    expect(got).to.deep.include({
      sessionId: s,
      smid: 'c1',
      requestTs: 4000,
      expiresTs: 5000,
      replyTerminatorId: 'Test.terminator',
      clientEndpointId: 'ClientSide.endpoint',
      traceId: 'trace-c1',
      correlationText: 'ctx-c1',
    });
    expect(Buffer.from(got!.correlationBinary!).toString()).to.equal('c1');
    expect(await f.store.getAndDeleteRequestCorrelation(s, 'c1')).to.equal(null);
    expect(await f.store.storeRequestCorrelation(corr(sid(), 'c1', 5000))).to.be.false;
  });

  it('joins the handling transaction: a rollback restores the correlation', async () => {
    const s = await session();
    await f.store.storeRequestCorrelation(corr(s, 'c2', 5000));
    await expectRejection(
      f.store.transaction(async (trx) => {
        expect(await f.store.getAndDeleteRequestCorrelation(s, 'c2', trx)).to.not.equal(null);
        throw new MessageIdAlreadyExistsError('terminator failed; roll back');
      }),
      MessageIdAlreadyExistsError,
    );
    expect(await f.store.getAndDeleteRequestCorrelation(s, 'c2')).to.not.equal(null);
  });

  it('lists expired correlations oldest first, limited', async () => {
    const s = await session();
    const base = 1_000_000 + Math.floor(Math.random() * 1000) * 10_000;
    await f.store.storeRequestCorrelation(corr(s, 'e3', base + 3));
    await f.store.storeRequestCorrelation(corr(s, 'e1', base + 1));
    await f.store.storeRequestCorrelation(corr(s, 'e2', base + 2));
    await f.store.storeRequestCorrelation(corr(s, 'late', base + 100));
    const expired = (await f.store.getExpiredRequestCorrelations(base + 50, 100)).filter(
      (e) => e.sessionId === s,
    );
    expect(expired).to.deep.equal([
      { sessionId: s, smid: 'e1', expiresTs: base + 1 },
      { sessionId: s, smid: 'e2', expiresTs: base + 2 },
      { sessionId: s, smid: 'e3', expiresTs: base + 3 },
    ]);
    const limited = await f.store.getExpiredRequestCorrelations(base + 50, 1);
    expect(limited).to.have.length(1);
  });

  it('concurrent getAndDeleteRequestCorrelation on separate connections returns the row exactly once', async () => {
    const s = await session();
    const stores: SqlClusterStore[] = Array.from({ length: 10 }, (_, i) =>
      f.newStore({ nodeName: `racer-${i}` }, f.racerKnex()),
    );
    for (let round = 0; round < 5; round++) {
      const smid = `race-${round}`;
      await f.store.storeRequestCorrelation(corr(s, smid, 5000));
      const results = await Promise.all(stores.map((st) => st.getAndDeleteRequestCorrelation(s, smid)));
      expect(
        results.filter((r) => r !== null),
        `round ${round}`,
      ).to.have.length(1);
    }
  });
});
