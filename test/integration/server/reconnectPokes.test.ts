import { expect } from 'chai';
import { EventEmitter } from 'node:events';
import type { Logger } from '../../../src/logging.ts';
import { connectSession, describeEachServerEnv } from './serverTestKit.ts';

/** A logger that emits every warning's message, so a test can wait for one. */
function capturingLogger(): { logger: Logger; warnings: EventEmitter } {
  const warnings = new EventEmitter();
  const logger: Logger = {
    trace() {},
    debug() {},
    info() {},
    warn: (_obj, msg) => void warnings.emit('warn', msg ?? ''),
    error() {},
    child: () => logger,
  };
  return { logger, warnings };
}

const { logger, warnings } = capturingLogger();

/** Resolves at the first warning matching `re`. */
function warning(re: RegExp, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      warnings.off('warn', on);
      reject(new Error(`no warning matching ${re} within ${timeoutMs} ms`));
    }, timeoutMs);
    const on = (msg: string): void => {
      if (!re.test(msg)) return;
      clearTimeout(timer);
      warnings.off('warn', on);
      resolve(msg);
    };
    warnings.on('warn', on);
  });
}

// The self-heal sweep runs every 10 minutes here: whatever is delivered within the test's bounds was delivered by
// the reconnect handling, not by the sweep.
describeEachServerEnv(
  'MatsSocketServer pokes across a broker outage',
  { nodes: 2, logger, server: { jobs: { selfHealIntervalMs: 600_000 } } },
  (ctx) => {
    it('a node whose broker connection comes back forwards its live sessions\u2019 pending messages (pokes to it were lost)', async () => {
      const { cluster } = ctx();
      const [a, b] = cluster.nodes;
      const { client, sid } = await connectSession(b!.url, 'standard');
      try {
        // A message stored without any poke: what a poke lost on the way to B leaves behind.
        await a!.store.storeMessagesInOutbox([
          {
            sessionId: sid,
            smid: 'lostPoke1',
            traceId: 'lost-poke',
            type: 'SEND',
            envelope: JSON.stringify({ t: 'SEND', eid: 'ClientSide.terminator', tid: 'lost-poke' }),
            messageText: JSON.stringify({ n: 1 }),
          },
        ]);
        await cluster.broker.dropConnections(b!.nodeName);
        const send = await client.next((e) => e.t === 'SEND', 15_000);
        expect(send).to.include({ smid: 'lostPoke1', eid: 'ClientSide.terminator', tid: 'lost-poke' });
      } finally {
        client.ws.terminate();
      }
    });
  },
);

// Needs a broker that blocks publishers on demand: the in-memory one (see TestBroker.canBlock).
describeEachServerEnv(
  'MatsSocketServer pokes that could not be published',
  { nodes: 2, logger, server: { jobs: { selfHealIntervalMs: 600_000 } }, envs: ['in-memory + SQLite'] },
  (ctx) => {
    it('are sent again once the broker connection is back', async () => {
      const { cluster } = ctx();
      const [a, b] = cluster.nodes;
      const { client, sid } = await connectSession(b!.url, 'standard');
      try {
        await cluster.broker.blockPublishing();
        const failed = warning(/poke failed/, 10_000);
        // Stored at once; its poke to B times out on the blocked broker.
        expect(await a!.server.send(sid, 'unsent-poke', 'ClientSide.terminator', { n: 2 })).to.equal(true);
        await failed;
        // The blocked publish dies with A's connection (as unread bytes do with a TCP connection). Only A
        // reconnects: B's own reconnect handling cannot be what delivers the message.
        await cluster.broker.dropConnections(a!.nodeName);
        await cluster.broker.unblockPublishing();
        const send = await client.next((e) => e.t === 'SEND', 15_000);
        expect(send).to.include({ eid: 'ClientSide.terminator', tid: 'unsent-poke' });
      } finally {
        client.ws.terminate();
      }
    });
  },
);
