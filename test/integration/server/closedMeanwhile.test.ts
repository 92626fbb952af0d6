import { expect } from 'chai';
import { connectSession, describeEachServerEnv } from './serverTestKit.ts';

/**
 * A session closed by another node while its connection here still sends: the incoming commit writes nothing for
 * it (on MySQL/MariaDB the optimistic one-round-trip commit fails on its guard and the message is committed again
 * the usual way, docs/store.md §6) and the client is told RETRY.
 */
describeEachServerEnv('a client message of a session closed meanwhile', { nodes: 1 }, (ctx) => {
  it('gets RETRY; no inbox row is written, and the sessions of the same node go on', async () => {
    const node = ctx().cluster.nodes[0]!;
    const gone = await connectSession(node.url, 'closedElsewhere');
    const live = await connectSession(node.url, 'stillHere');
    // What a close on another node does to the store, without telling this node's connection yet.
    await node.store.knex('mats_socket_session').where('session_id', gone.sid).delete();
    gone.client.send([{ t: 'REQUEST', eid: 'Test.single', tid: 'g', cmid: 1, msg: { number: 1 } }]);
    live.client.send([{ t: 'REQUEST', eid: 'Test.single', tid: 'l', cmid: 1, msg: { number: 2 } }]);
    const retry = await gone.client.next((e) => e.cmid === '1' && e.t !== 'ACK', 5000);
    expect(retry).to.include({ t: 'RETRY', cmid: '1' });
    expect(retry.desc).to.equal('The session is gone');
    expect(await node.store.getMessageFromInbox(gone.sid, '1')).to.equal(null);
    const resolve = await live.client.next((e) => e.t === 'RESOLVE', 5000);
    expect(resolve.msg).to.include({ number2: 4 });
    await Promise.all([gone.client.close(4000, 'done'), live.client.close(4000, 'done')]);
  });
});
