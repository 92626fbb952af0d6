import { expect } from 'chai';
import { describeEachDatabase } from '../../../harness/databases.ts';
import { newSession, useStoreFixture } from './storeFixture.ts';

/**
 * Writes a connection makes for its session are guarded by (node, connection id): once the session was resumed
 * by another connection (on this node or another one), the superseded connection can change nothing.
 */
describeEachDatabase('ClusterStoreAndForward session ownership', (db) => {
  const f = useStoreFixture(db);

  /** A session of node A's connection `c1` with one inbox and one outbox row. */
  async function sessionWithBoxes(): Promise<ReturnType<typeof newSession>> {
    const s = newSession({ connectionId: 'c1' });
    await f.store.registerNewSession(s);
    await f.store.storeMessageIdInInbox(s.sessionId, 'cmid-1');
    await f.store.storeMessageInOutbox({
      sessionId: s.sessionId,
      smid: 'smid-1',
      traceId: 't',
      type: 'SEND',
      envelope: '{}',
    });
    return s;
  }

  async function expectIntact(sessionId: string, nodename: string, connectionId: string): Promise<void> {
    expect(await f.store.getCurrentRegisteredNodeForSession(sessionId)).to.deep.equal({
      sessionId,
      nodename,
      connectionId,
    });
    expect(await f.store.getMessageFromInbox(sessionId, 'cmid-1')).to.not.equal(null);
    expect(await f.store.getMessagesFromOutbox(sessionId, 10)).to.have.length(1);
  }

  describe('#closeSessionOfConnection()', () => {
    it('deletes the session with its box rows when the connection still holds it', async () => {
      const s = await sessionWithBoxes();
      expect(await f.store.closeSessionOfConnection(s.sessionId, 'c1')).to.be.true;
      expect(await f.store.isSessionExists(s.sessionId)).to.be.false;
      expect(await f.store.getMessageFromInbox(s.sessionId, 'cmid-1')).to.equal(null);
      expect(await f.store.getMessagesFromOutbox(s.sessionId, 10)).to.deep.equal([]);
      expect(await f.store.closeSessionOfConnection(s.sessionId, 'c1')).to.be.false;
    });

    it('changes nothing after the session was resumed on another node (a lost CloseWS)', async () => {
      const s = await sessionWithBoxes();
      const nodeB = f.newStore();
      await nodeB.registerResumedSession({ ...s, connectionId: 'c2' });
      expect(await f.store.closeSessionOfConnection(s.sessionId, 'c1')).to.be.false;
      await expectIntact(s.sessionId, nodeB.options.nodeName, 'c2');
      // Node B's store with A's old connection id cannot either: the guard is node AND connection.
      expect(await nodeB.closeSessionOfConnection(s.sessionId, 'c1')).to.be.false;
      await expectIntact(s.sessionId, nodeB.options.nodeName, 'c2');
    });

    it('changes nothing after the session was resumed by another connection of this node', async () => {
      const s = await sessionWithBoxes();
      await f.store.registerResumedSession({ ...s, connectionId: 'c2' });
      expect(await f.store.closeSessionOfConnection(s.sessionId, 'c1')).to.be.false;
      await expectIntact(s.sessionId, f.store.options.nodeName, 'c2');
    });

    it('changes nothing for a deregistered session (it is nobody’s until resumed)', async () => {
      const s = await sessionWithBoxes();
      await f.store.deregisterSessionFromThisNode(s.sessionId, 'c1');
      expect(await f.store.closeSessionOfConnection(s.sessionId, 'c1')).to.be.false;
      expect(await f.store.isSessionExists(s.sessionId)).to.be.true;
    });
  });

  describe('#deregisterSessionFromThisNode() / #notifySessionLiveliness()', () => {
    it('a superseded node neither deregisters nor keeps alive the session another node holds', async () => {
      const s = await sessionWithBoxes();
      const nodeB = f.newStore();
      const resumedAt = f.clock.advance(1000);
      await nodeB.registerResumedSession({ ...s, connectionId: 'c2' });
      expect(await f.store.deregisterSessionFromThisNode(s.sessionId, 'c1')).to.be.false;
      expect(await f.store.deregisterSessionFromThisNode(s.sessionId, 'c2')).to.be.false;
      f.clock.advance(1000);
      await f.store.notifySessionLiveliness([s.sessionId]);
      const [info] = await f.store.getSessions({ userId: s.userId });
      expect(info?.slts).to.equal(resumedAt);
      await expectIntact(s.sessionId, nodeB.options.nodeName, 'c2');
      const later = f.clock.advance(1000);
      await nodeB.notifySessionLiveliness([s.sessionId]);
      const [again] = await f.store.getSessions({ userId: s.userId });
      expect(again?.slts).to.equal(later);
    });
  });
});
