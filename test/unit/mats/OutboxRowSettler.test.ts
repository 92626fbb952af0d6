import { expect } from 'chai';
import type { OutgoingMessage } from '../../../src/broker/Transport.ts';
import { ErrorCode, TransportError } from '../../../src/errors.ts';
import { silentLogger } from '../../../src/logging.ts';
import { createMatsInstruments } from '../../../src/mats/MatsInstruments.ts';
import { MatsHeader } from '../../../src/mats/MatsWire.ts';
import { OutboxRowSettler } from '../../../src/mats/OutboxRowSettler.ts';
import { noopMetrics } from '../../../src/metrics/Metrics.ts';
import type { LeasedOutgoingMessage, MatsMessageStore } from '../../../src/store/MatsMessageStore.ts';

function row(id: string, attempts = 0): LeasedOutgoingMessage {
  return {
    id: 0,
    matsMessageId: id,
    causeMessageId: null,
    createdTimestamp: 0,
    attempts,
    ageMs: 0,
    message: {
      target: { kind: 'queue', name: 'mats.Q' },
      body: Buffer.from(id),
      properties: { messageId: id, persistent: true, headers: { [MatsHeader.MSG_ID]: id } },
    },
  };
}

/** The store calls the settler makes, recorded. */
function fakeStore() {
  const calls = {
    deleted: [] as string[],
    released: [] as Array<{ ids: readonly string[]; countAttempt: boolean; reason: string }>,
    parked: [] as string[],
  };
  const store = {
    db: {},
    deleteOutbox: (_db: unknown, ids: readonly string[]) => {
      calls.deleted.push(...ids);
      return Promise.resolve(ids.length);
    },
    releaseOutbox: (ids: readonly string[], _o: string, f: { countAttempt: boolean; reason: string }) => {
      calls.released.push({ ids, ...f });
      return Promise.resolve();
    },
    parkOutbox: (id: string) => {
      calls.parked.push(id);
      return Promise.resolve();
    },
  } as unknown as MatsMessageStore;
  return { store, calls };
}

function settler(
  store: MatsMessageStore,
  publish: (m: readonly OutgoingMessage[]) => Promise<void>,
  state: 'connected' | 'reconnecting' = 'connected',
) {
  return new OutboxRowSettler({
    store,
    transport: { state },
    publish,
    logger: silentLogger,
    instruments: createMatsInstruments(noopMetrics),
    now: () => 1000,
    owner: 'n#1',
    maxAttempts: 3,
    appName: 'A',
    appVersion: '1',
    nodeName: 'n',
  });
}

describe('OutboxRowSettler', () => {
  it("a row's remaining TTL is its hop TTL less its age by the database clock, whatever the mats_Expires of the writer's clock", async () => {
    const { store, calls } = fakeStore();
    const sent: OutgoingMessage[] = [];
    const ttlRow = (id: string, ageMs: number, expires: number): LeasedOutgoingMessage => {
      const r = row(id);
      r.ageMs = ageMs;
      r.message.properties.expiration = 5000;
      r.message.properties.headers[MatsHeader.EXPIRES] = expires;
      return r;
    };
    // The settler's clock says 1000. `fresh` was written by a node 10 s behind (mats_Expires long past here),
    // `stale` by a node 10 s ahead (mats_Expires far ahead): only their ages count.
    const published = await settler(store, (m) => {
      sent.push(...m);
      return Promise.resolve();
    }).settle([ttlRow('fresh', 1200, 1000 - 10_000 + 3800), ttlRow('stale', 5000, 1000 + 10_000)]);
    expect(published).to.equal(1);
    expect(sent.map((m) => [m.properties.messageId, m.properties.expiration])).to.deep.equal([
      ['fresh', 3800],
    ]);
    expect(calls.deleted.sort()).to.deep.equal(['fresh', 'stale']);
  });

  it('a broker outage (confirm timeout) counts no attempt, even for a row at its last one', async () => {
    const { store, calls } = fakeStore();
    const timeout = new TransportError(ErrorCode.TRANSPORT_CONFIRM_TIMEOUT, 'no confirm');
    const published = await settler(store, () => Promise.reject(timeout)).settle([row('a', 2), row('b')]);
    expect(published).to.equal(0);
    expect(calls.released).to.have.length(1);
    expect(calls.released[0]).to.include({ countAttempt: false });
    expect(calls.deleted).to.deep.equal([]);
  });

  it('a row whose refusal closes the channel under its batch-mates: each is retried alone; only it counts', async () => {
    const { store, calls } = fakeStore();
    let inFlight = 0;
    let badInFlight = false;
    const publish = async (m: readonly OutgoingMessage[]): Promise<void> => {
      const bad = m[0]!.properties.messageId === 'bad';
      inFlight++;
      if (bad) badInFlight = true;
      await new Promise((r) => setImmediate(r));
      const fails = bad || badInFlight;
      inFlight--;
      if (inFlight === 0) badInFlight = false;
      if (fails)
        throw new TransportError(ErrorCode.TRANSPORT_UNAVAILABLE, 'channel closed before the confirm');
    };
    const published = await settler(store, publish).settle([row('g1'), row('bad'), row('g2')]);
    expect(published).to.equal(2);
    expect([...calls.deleted].sort()).to.deep.equal(['g1', 'g2']);
    expect(calls.released).to.deep.equal([
      {
        ids: ['bad'],
        countAttempt: true,
        reason: 'TransportError: channel closed before the confirm [TRANSPORT_UNAVAILABLE]',
      },
    ]);
  });

  it('at the last attempt the row is dead-lettered to DLQ.<queue> with a short reason, then deleted', async () => {
    const { store, calls } = fakeStore();
    const sent: OutgoingMessage[] = [];
    const publish = (m: readonly OutgoingMessage[]): Promise<void> => {
      if (m[0]!.target.name === 'mats.Q')
        return Promise.reject(new TransportError(ErrorCode.TRANSPORT_NACKED, 'nacked'));
      sent.push(...m);
      return Promise.resolve();
    };
    await settler(store, publish).settle([row('x', 2)]);
    expect(sent.map((m) => m.target.name)).to.deep.equal(['DLQ.mats.Q']);
    expect(sent[0]!.properties.headers[MatsHeader.DLQ_EXCEPTION]).to.equal(
      'outbox row x not published after 3 attempt(s): TransportError: nacked [TRANSPORT_NACKED]',
    );
    expect(calls.deleted).to.deep.equal(['x']);
  });

  it('a row whose dead letter is refused too is parked; during an outage it is only released', async () => {
    const refused = new TransportError(ErrorCode.TRANSPORT_HEADERS_TOO_LARGE, 'too large');
    let { store, calls } = fakeStore();
    await settler(store, () => Promise.reject(refused)).settle([row('p', 2)]);
    expect(calls.parked).to.deep.equal(['p']);
    ({ store, calls } = fakeStore());
    const down = new TransportError(ErrorCode.TRANSPORT_UNAVAILABLE, 'not connected');
    await settler(store, () => Promise.reject(down), 'reconnecting').settle([row('q', 2)]);
    expect(calls.parked).to.deep.equal([]);
    expect(calls.released[0]).to.include({ countAttempt: false });
  });
});
