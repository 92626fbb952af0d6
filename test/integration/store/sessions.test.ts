import { expect } from 'chai';
import {
  ErrorCode,
  MessageIdAlreadyExistsError,
  SessionNotFoundError,
  WrongUserError,
} from '../../../src/errors.ts';
import { randomId } from '../../../src/util/ids.ts';
import { describeEachDatabase } from '../../../harness/databases.ts';
import { expectRejection, newSession, sid, useStoreFixture } from './storeFixture.ts';

describeEachDatabase('ClusterStoreAndForward sessions', (db) => {
  const f = useStoreFixture(db);

  describe('#registerNewSession()', () => {
    it('inserts a session registered to this node and connection, with created = liveliness = now', async () => {
      const s = newSession();
      const created = await f.store.registerNewSession(s);
      expect(created).to.equal(f.clock.value);
      expect(await f.store.isSessionExists(s.sessionId)).to.be.true;
      expect(await f.store.getCurrentRegisteredNodeForSession(s.sessionId)).to.deep.equal({
        sessionId: s.sessionId,
        nodename: f.store.options.nodeName,
        connectionId: s.connectionId,
      });
      const [info] = await f.store.getSessions({ userId: s.userId });
      expect(info).to.deep.equal({
        id: s.sessionId,
        uid: s.userId,
        scts: created,
        slts: created,
        clv: s.clientLib,
        an: s.appName,
        av: s.appVersion,
        nn: f.store.options.nodeName,
      });
    });

    it('raises MessageIdAlreadyExistsError for an existing session id, leaving a joined transaction usable', async () => {
      const s = newSession();
      await f.store.registerNewSession(s);
      await expectRejection(
        f.store.registerNewSession(s),
        MessageIdAlreadyExistsError,
        ErrorCode.MESSAGE_ID_EXISTS,
      );
      const other = newSession();
      await f.store.transaction(async (trx) => {
        await expectRejection(f.store.registerNewSession({ ...s }, trx), MessageIdAlreadyExistsError);
        await f.store.registerNewSession(other, trx);
      });
      expect(await f.store.isSessionExists(other.sessionId)).to.be.true;
    });

    it('truncates the client lib to 1024 characters', async () => {
      const s = newSession({ clientLib: 'x'.repeat(2000) });
      await f.store.registerNewSession(s);
      const [info] = await f.store.getSessions({ userId: s.userId });
      expect(info?.clv).to.have.length(1024);
    });

    it('treats ids as case-sensitive (aB and Ab are different sessions)', async () => {
      const base = randomId(14);
      const lower = newSession({ sessionId: `${base}aB` });
      const upper = newSession({ sessionId: `${base}Ab`, userId: lower.userId });
      await f.store.registerNewSession(lower);
      await f.store.registerNewSession(upper);
      expect(await f.store.getSessionsCount({ userId: lower.userId })).to.equal(2);
      expect((await f.store.getCurrentRegisteredNodeForSession(upper.sessionId))?.connectionId).to.equal(
        upper.connectionId,
      );
      await f.store.closeSession(lower.sessionId);
      expect(await f.store.isSessionExists(upper.sessionId)).to.be.true;
      expect(await f.store.isSessionExists(lower.sessionId)).to.be.false;
    });
  });

  describe('#registerNewSessionWithinUserLimit()', () => {
    it('registers while the user is under the cap, then reports the count and stores nothing', async () => {
      const user = `capped-${randomId(6)}`;
      const first = newSession({ userId: user });
      expect(await f.store.registerNewSessionWithinUserLimit(first, 2)).to.deep.equal({
        registered: true,
        createdTs: f.clock.value,
      });
      await f.store.registerNewSession(newSession({ userId: user }));
      const third = newSession({ userId: user });
      expect(await f.store.registerNewSessionWithinUserLimit(third, 2)).to.deep.equal({
        registered: false,
        sessionCount: 2,
      });
      expect(await f.store.isSessionExists(third.sessionId)).to.be.false;
      // Another user is not affected by this user's sessions.
      const other = newSession();
      expect((await f.store.registerNewSessionWithinUserLimit(other, 2)).registered).to.be.true;
    });

    it('raises MessageIdAlreadyExistsError for an existing session id', async () => {
      const s = newSession();
      await f.store.registerNewSession(s);
      await expectRejection(
        f.store.registerNewSessionWithinUserLimit({ ...s, userId: `u-${randomId(6)}` }, 5),
        MessageIdAlreadyExistsError,
        ErrorCode.MESSAGE_ID_EXISTS,
      );
    });

    it('never exceeds the cap under many concurrent registrations from two nodes', async () => {
      const user = `flood-${randomId(6)}`;
      const cap = 3;
      const nodeB = f.newStore({}, f.racerKnex());
      const outcomes = await Promise.all(
        Array.from({ length: 24 }, (_, i) =>
          (i % 2 === 0 ? f.store : nodeB).registerNewSessionWithinUserLimit(
            newSession({ userId: user }),
            cap,
          ),
        ),
      );
      expect(outcomes.filter((o) => o.registered)).to.have.length(cap);
      expect(await f.store.getSessionsCount({ userId: user })).to.equal(cap);
    });
  });

  describe('#registerResumedSession()', () => {
    it('re-registers to this node, returning the created time and the previous registration', async () => {
      const s = newSession();
      const created = await f.store.registerNewSession(s);
      f.clock.advance(1000);
      const nodeB = f.newStore();
      const resumed = await nodeB.registerResumedSession({
        ...s,
        connectionId: 'conn-2',
        appVersion: '2.0.0',
      });
      expect(resumed).to.deep.equal({
        createdTs: created,
        previous: { nodename: f.store.options.nodeName, connectionId: s.connectionId },
      });
      expect(await f.store.getCurrentRegisteredNodeForSession(s.sessionId)).to.deep.equal({
        sessionId: s.sessionId,
        nodename: nodeB.options.nodeName,
        connectionId: 'conn-2',
      });
      const [info] = await f.store.getSessions({ userId: s.userId });
      expect(info?.av).to.equal('2.0.0');
      expect(info?.slts).to.equal(f.clock.value);
      expect(info?.scts).to.equal(created);
    });

    it('reports previous: null when the session was deregistered', async () => {
      const s = newSession();
      await f.store.registerNewSession(s);
      await f.store.deregisterSessionFromThisNode(s.sessionId, s.connectionId);
      const resumed = await f.store.registerResumedSession({ ...s, connectionId: 'c2' });
      expect(resumed.previous).to.equal(null);
    });

    it('raises SessionNotFoundError for a missing session and never creates it', async () => {
      const s = newSession();
      await expectRejection(
        f.store.registerResumedSession(s),
        SessionNotFoundError,
        ErrorCode.SESSION_NOT_FOUND,
      );
      expect(await f.store.isSessionExists(s.sessionId)).to.be.false;
    });

    it('raises WrongUserError for another user and changes nothing', async () => {
      const s = newSession();
      await f.store.registerNewSession(s);
      await expectRejection(
        f.store.registerResumedSession({ ...s, userId: 'mallory', connectionId: 'evil' }),
        WrongUserError,
        ErrorCode.WRONG_USER,
      );
      expect((await f.store.getCurrentRegisteredNodeForSession(s.sessionId))?.connectionId).to.equal(
        s.connectionId,
      );
    });
  });

  describe('#registerResumedSessions()', () => {
    it('resumes a batch in one go: outcomes per item, registrations moved, attempted outbox rows unmarked', async () => {
      const user = `batch-${randomId(6)}`;
      const a = newSession({ userId: user });
      const b = newSession({ userId: user });
      const other = newSession();
      const createdA = await f.store.registerNewSession(a);
      await f.store.registerNewSession(b);
      await f.store.registerNewSession(other);
      await f.store.deregisterSessionFromThisNode(b.sessionId, b.connectionId);
      await f.store.storeMessageInOutbox({
        sessionId: a.sessionId,
        smid: 'm1',
        traceId: 't1',
        type: 'SEND',
        envelope: '{"t":"SEND"}',
      });
      await f.store.outboxMessagesAttemptedDelivery(a.sessionId, ['m1']);
      expect(await f.store.getMessagesFromOutbox(a.sessionId, 10)).to.have.length(0);
      f.clock.advance(1000);
      const nodeB = f.newStore();
      const missing = newSession({ userId: user });
      const outcomes = await nodeB.registerResumedSessions(
        [
          { ...a, connectionId: 'a-2', appVersion: '2.0.0' },
          { ...b, connectionId: 'b-2' },
          missing,
          { ...other, userId: 'mallory', connectionId: 'evil' },
        ],
        10,
      );
      expect(outcomes).to.deep.equal([
        {
          kind: 'resumed',
          createdTs: createdA,
          previous: { nodename: f.store.options.nodeName, connectionId: a.connectionId },
        },
        { kind: 'resumed', createdTs: createdA, previous: null },
        { kind: 'notFound' },
        { kind: 'wrongUser' },
      ]);
      expect(await f.store.getCurrentRegisteredNodeForSession(a.sessionId)).to.deep.equal({
        sessionId: a.sessionId,
        nodename: nodeB.options.nodeName,
        connectionId: 'a-2',
      });
      expect((await f.store.getCurrentRegisteredNodeForSession(b.sessionId))?.connectionId).to.equal('b-2');
      expect((await f.store.getCurrentRegisteredNodeForSession(other.sessionId))?.connectionId).to.equal(
        other.connectionId,
      );
      const infoA = (await f.store.getSessions({ userId: user })).find((i) => i.id === a.sessionId);
      expect(infoA).to.include({ av: '2.0.0', slts: f.clock.value, scts: createdA });
      expect(await f.store.isSessionExists(missing.sessionId)).to.be.false;
      expect((await f.store.getMessagesFromOutbox(a.sessionId, 10)).map((m) => m.smid)).to.deep.equal(['m1']);
    });

    it('with fetchOutbox, each resumed session carries its outbox as read after the unmark (up to the limit)', async () => {
      const user = `fetch-${randomId(6)}`;
      const a = newSession({ userId: user });
      const b = newSession({ userId: user });
      await f.store.registerNewSession(a);
      await f.store.registerNewSession(b);
      for (const smid of ['a1', 'a2', 'a3']) {
        await f.store.storeMessageInOutbox({
          sessionId: a.sessionId,
          smid,
          traceId: 't',
          type: 'SEND',
          envelope: '{"t":"SEND"}',
        });
        f.clock.advance(1);
      }
      await f.store.outboxMessagesAttemptedDelivery(a.sessionId, ['a1']);
      const outcomes = await f.newStore().registerResumedSessions(
        [
          { ...a, connectionId: 'a-2' },
          { ...b, connectionId: 'b-2' },
        ],
        10,
        2,
      );
      const outboxes = outcomes.map((o) => (o.kind === 'resumed' ? o.outbox?.map((m) => m.smid) : o.kind));
      // a1 was attempted: the resume unmarks it, so it is delivered again, first (stored order).
      expect(outboxes).to.deep.equal([['a1', 'a2'], []]);
      const first = outcomes[0]!;
      expect(first.kind === 'resumed' && first.outbox![0]).to.include({
        smid: 'a1',
        deliveryCount: 1,
      });
    });

    it("refuses (tooMany, unchanged) when the user's other sessions reach the cap", async () => {
      const user = `cap-${randomId(6)}`;
      const sessions = [
        newSession({ userId: user }),
        newSession({ userId: user }),
        newSession({ userId: user }),
      ];
      for (const s of sessions) await f.store.registerNewSession(s);
      const [first] = sessions;
      expect(await f.store.registerResumedSessions([{ ...first!, connectionId: 'again' }], 2)).to.deep.equal([
        { kind: 'tooMany' },
      ]);
      expect((await f.store.getCurrentRegisteredNodeForSession(first!.sessionId))?.connectionId).to.equal(
        first!.connectionId,
      );
      expect(
        (await f.store.registerResumedSessions([{ ...first!, connectionId: 'again' }], 3))[0]?.kind,
      ).to.equal('resumed');
    });

    it('resumes the same session twice in one batch in order: the second replaces the first', async () => {
      const s = newSession();
      await f.store.registerNewSession(s);
      const outcomes = await f.store.registerResumedSessions(
        [
          { ...s, connectionId: 'first' },
          { ...s, connectionId: 'second' },
        ],
        10,
      );
      expect(outcomes.map((o) => (o.kind === 'resumed' ? o.previous?.connectionId : o.kind))).to.deep.equal([
        s.connectionId,
        'first',
      ]);
      expect((await f.store.getCurrentRegisteredNodeForSession(s.sessionId))?.connectionId).to.equal(
        'second',
      );
    });

    it('lockSessionsForShare: the registration of each existing session, in one call', async () => {
      const s1 = newSession();
      const s2 = newSession();
      await f.store.registerNewSession(s1);
      await f.store.registerNewSession(s2);
      const states = await f.store.transaction((trx) =>
        f.store.lockSessionsForShare([s2.sessionId, s1.sessionId, 'nope'], trx),
      );
      expect([...states.keys()].sort()).to.deep.equal([s1.sessionId, s2.sessionId].sort());
      expect(states.get(s1.sessionId)).to.deep.equal({
        nodename: f.store.options.nodeName,
        connectionId: s1.connectionId,
      });
    });
  });

  describe('#deregisterSessionFromThisNode()', () => {
    it('deregisters only with the current connection id and this node', async () => {
      const s = newSession();
      await f.store.registerNewSession(s);
      expect(await f.store.deregisterSessionFromThisNode(s.sessionId, 'other-conn')).to.be.false;
      expect(await f.newStore().deregisterSessionFromThisNode(s.sessionId, s.connectionId)).to.be.false;
      expect(await f.store.getCurrentRegisteredNodeForSession(s.sessionId)).to.not.equal(null);
      expect(await f.store.deregisterSessionFromThisNode(s.sessionId, s.connectionId)).to.be.true;
      expect(await f.store.getCurrentRegisteredNodeForSession(s.sessionId)).to.equal(null);
      expect(await f.store.isSessionExists(s.sessionId)).to.be.true;
    });

    it('a stale connection id cannot deregister a newer registration (same node or another)', async () => {
      const s = newSession();
      await f.store.registerNewSession(s);
      await f.store.registerResumedSession({ ...s, connectionId: 'newer' });
      expect(await f.store.deregisterSessionFromThisNode(s.sessionId, s.connectionId)).to.be.false;
      expect((await f.store.getCurrentRegisteredNodeForSession(s.sessionId))?.connectionId).to.equal('newer');
      const nodeB = f.newStore();
      await nodeB.registerResumedSession({ ...s, connectionId: 'on-b' });
      expect(await f.store.deregisterSessionFromThisNode(s.sessionId, 'newer')).to.be.false;
      expect(await f.store.getCurrentRegisteredNodeForSession(s.sessionId)).to.deep.include({
        nodename: nodeB.options.nodeName,
        connectionId: 'on-b',
      });
    });
  });

  describe('#deregisterAllSessionsOfThisNode() / #getSessionsRegisteredToThisNode()', () => {
    it('finds and deregisters exactly this node’s sessions', async () => {
      const nodeC = f.newStore({ nodeName: `node-C-${randomId(6)}` });
      const nodeD = f.newStore({ nodeName: `node-D-${randomId(6)}` });
      const old = newSession();
      await nodeC.registerNewSession(old);
      f.clock.advance(200_000);
      const fresh = newSession();
      await nodeC.registerNewSession(fresh);
      const onD = newSession();
      await nodeD.registerNewSession(onD);
      const stale = await nodeC.getSessionsRegisteredToThisNode(f.clock.value - 120_000);
      expect(stale).to.deep.equal([
        { sessionId: old.sessionId, nodename: nodeC.options.nodeName, connectionId: old.connectionId },
      ]);
      expect(await nodeC.deregisterAllSessionsOfThisNode()).to.equal(2);
      expect(await nodeC.getCurrentRegisteredNodeForSession(fresh.sessionId)).to.equal(null);
      expect(await nodeC.getCurrentRegisteredNodeForSession(onD.sessionId)).to.not.equal(null);
      expect(await nodeC.getSessionsRegisteredToThisNode(f.clock.value + 1)).to.deep.equal([]);
    });
  });

  describe('#getSessions() / #getSessionsCount()', () => {
    it('honours every filter and pages by session id', async () => {
      const user = `user-${randomId(8)}`;
      const app = `App-${randomId(8)}`;
      const specs = [
        { appVersion: '1.0.0', active: true },
        { appVersion: '1.5.0', active: false },
        { appVersion: '2.0.0', active: true },
        { appVersion: '2.1.0', active: true },
        { appVersion: '0.9.0', active: false },
      ];
      const ids: string[] = [];
      for (const spec of specs) {
        const s = newSession({ userId: user, appName: app, appVersion: spec.appVersion });
        await f.store.registerNewSession(s);
        if (!spec.active) await f.store.deregisterSessionFromThisNode(s.sessionId, s.connectionId);
        ids.push(s.sessionId);
      }
      const otherUser = newSession({ appName: app, appVersion: '9.9.9' });
      await f.store.registerNewSession(otherUser);

      expect(await f.store.getSessionsCount({ userId: user })).to.equal(5);
      expect(await f.store.getSessionsCount({ userId: user, onlyActive: true })).to.equal(3);
      expect(await f.store.getSessionsCount({ appName: app })).to.equal(6);
      expect(await f.store.getSessionsCount({ appName: app, appVersionAtOrAbove: '1.5.0' })).to.equal(4);
      expect(
        await f.store.getSessionsCount({
          appName: app,
          appVersionAtOrAbove: '1.5.0',
          onlyActive: true,
          userId: user,
        }),
      ).to.equal(2);
      expect(await f.store.getSessionsCount({ userId: user, excludeSessionId: ids[0]! })).to.equal(4);

      const inactive = await f.store.getSessions({ userId: user, appVersionAtOrAbove: '0' });
      expect(
        inactive
          .filter((s) => s.nn === undefined)
          .map((s) => s.av)
          .sort(),
      ).to.deep.equal(['0.9.0', '1.5.0']);
      expect(inactive.filter((s) => s.nn !== undefined)).to.have.length(3);

      const all = (await f.store.getSessions({ userId: user })).map((s) => s.id);
      expect(all).to.have.members(ids);
      const pages: string[] = [];
      let after: string | undefined;
      for (;;) {
        const page = await f.store.getSessions(
          after === undefined
            ? { userId: user, limit: 2 }
            : { userId: user, limit: 2, afterSessionId: after },
        );
        if (page.length === 0) break;
        expect(page.length).to.be.at.most(2);
        pages.push(...page.map((s) => s.id));
        after = page[page.length - 1]!.id;
      }
      expect(pages).to.deep.equal(all);
      const active = await f.store.getSessions({ appName: app, onlyActive: true, appVersionAtOrAbove: '2' });
      expect(active.map((s) => s.av).sort()).to.deep.equal(['2.0.0', '2.1.0', '9.9.9']);
    });
  });

  describe('idPrefix (the admin search)', () => {
    it('matches a prefix of the user id or of the session id, case-sensitively, with LIKE characters as text', async () => {
      const tag = randomId(8);
      const make = async (userId: string, sessionId: string): Promise<string> => {
        await f.store.registerNewSession(newSession({ userId, sessionId }));
        return sessionId;
      };
      const alice = await make(`alice_${tag}`, `S${tag}a`);
      const alice2 = await make(`alice_${tag}`, `S${tag}b`);
      const wild = await make(`al%ce_${tag}`, `S${tag}c`);
      const upper = await make(`ALICE_${tag}`, `S${tag}d`);
      const bySession = await make(`zed_${tag}`, `alice_${tag}x`);
      const found = async (idPrefix: string): Promise<string[]> =>
        (await f.store.getSessions({ idPrefix })).map((s) => s.id).sort();

      expect(await found(`alice_${tag}`)).to.deep.equal([alice, alice2, bySession].sort());
      expect(await f.store.getSessionsCount({ idPrefix: `alice_${tag}` })).to.equal(3);
      // '%' and '_' are not wildcards: 'al%' finds only the user whose id has a '%'.
      expect(await found(`al%ce_${tag}`)).to.deep.equal([wild]);
      expect(await found(`alic__${tag}`)).to.deep.equal([]);
      expect(await found(`ALICE_${tag}`)).to.deep.equal([upper]);
      expect(await found(`S${tag}`)).to.deep.equal([alice, alice2, wild, upper].sort());
      // Combined with the other filters and paging.
      const page = await f.store.getSessions({ idPrefix: `S${tag}`, limit: 2, afterSessionId: alice });
      expect(page.map((s) => s.id)).to.deep.equal([alice2, wild]);
      expect(await f.store.getSessionsCount({ idPrefix: `S${tag}`, userId: `alice_${tag}` })).to.equal(2);
    });
  });

  describe('#closeSession()', () => {
    it('deletes the session with its inbox and outbox rows, keeping correlations and dead letters', async () => {
      const s = newSession();
      await f.store.registerNewSession(s);
      await f.store.storeMessageIdInInbox(s.sessionId, 'c1');
      await f.store.storeMessageInOutbox({
        sessionId: s.sessionId,
        smid: 'm1',
        traceId: 't',
        type: 'REQUEST',
        envelope: '{}',
        correlation: {
          requestTs: f.clock.value,
          expiresTs: f.clock.value + 1000,
          replyTerminatorId: 'term',
          clientEndpointId: 'ep',
        },
      });
      await f.store.storeMessageInOutbox({
        sessionId: s.sessionId,
        smid: 'm2',
        traceId: 't',
        type: 'SEND',
        envelope: '{}',
      });
      expect(await f.store.outboxMessagesDeadLetter(s.sessionId, ['m2'], 'undeliverable')).to.deep.equal([
        'm2',
      ]);

      expect(await f.store.closeSession(s.sessionId)).to.be.true;
      expect(await f.store.closeSession(s.sessionId)).to.be.false;
      expect(await f.store.isSessionExists(s.sessionId)).to.be.false;
      expect(await f.store.getMessageFromInbox(s.sessionId, 'c1')).to.equal(null);
      expect(await f.store.getMessagesFromOutbox(s.sessionId, 10)).to.deep.equal([]);
      expect(await f.store.listDeadLetters({ sessionId: s.sessionId })).to.have.length(1);
      const corr = await f.store.getAndDeleteRequestCorrelation(s.sessionId, 'm1');
      expect(corr?.replyTerminatorId).to.equal('term');
    });
  });

  describe('#notifySessionLiveliness()', () => {
    it('sets the liveliness time of all given sessions (chunked)', async () => {
      const small = f.newStore({ nodeName: f.store.options.nodeName, inClauseChunk: 2 });
      const sessions = [newSession(), newSession(), newSession(), newSession(), newSession()];
      for (const s of sessions) await f.store.registerNewSession(s);
      const untouched = newSession();
      await f.store.registerNewSession(untouched);
      const later = f.clock.advance(5000);
      await small.notifySessionLiveliness([...sessions.map((s) => s.sessionId), sid()]);
      await small.notifySessionLiveliness([]);
      for (const s of sessions) {
        const [info] = await f.store.getSessions({ userId: s.userId });
        expect(info?.slts).to.equal(later);
      }
      const [u] = await f.store.getSessions({ userId: untouched.userId });
      expect(u?.slts).to.equal(later - 5000);
    });
  });
});
