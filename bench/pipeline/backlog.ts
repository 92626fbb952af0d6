import { performance } from 'node:perf_hooks';
import { WebSocket } from 'ws';
import { SqlClusterStore } from '../../src/store/SqlClusterStore.ts';
import type { OutboxMessageInput } from '../../src/store/storeTypes.ts';
import { NodeProcess } from '../../harness/NodeProcess.ts';
import type { FaultNodeConfig } from '../../harness/faultNodeProgram.ts';
import { testAuth } from '../../harness/startTestCluster.ts';
import { pooled } from './scale.ts';

/** One raw session that ACKs every SEND it gets and counts first deliveries and repeats. */
interface BacklogSession {
  ws: WebSocket;
  sid: string;
  user: string;
}

interface Tally {
  unique: Set<string>;
  repeats: number;
  onProgress(): void;
}

function open(url: string, user: string, tally: Tally | undefined, sid?: string): Promise<BacklogSession> {
  const ws = new WebSocket(url, ['matssocket'], { perMessageDeflate: false });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('HELLO timed out')), 30_000);
    ws.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    ws.on('message', (data) => {
      const acks: string[] = [];
      for (const e of JSON.parse((data as Buffer).toString()) as Record<string, unknown>[]) {
        if (e.t === 'WELCOME') {
          clearTimeout(timer);
          resolve({ ws, sid: e.sid as string, user });
        } else if (e.t === 'SEND' && tally) {
          const smid = e.smid as string;
          acks.push(smid);
          if (tally.unique.has(smid)) tally.repeats++;
          else tally.unique.add(smid);
        }
      }
      // One ACK envelope per frame, as our client batches them (docs/protocol.md section 11).
      if (acks.length > 0) {
        ws.send(JSON.stringify([acks.length === 1 ? { t: 'ACK', smid: acks[0] } : { t: 'ACK', ids: acks }]));
        tally!.onProgress();
      }
    });
    ws.once('open', () =>
      ws.send(
        JSON.stringify([
          { t: 'HELLO', clv: 'bench', an: 'Bench', av: '1', auth: testAuth(user), ...(sid ? { sid } : {}) },
        ]),
      ),
    );
  });
}

/**
 * `--backlog N`: `sessions` sessions are opened on a node, which is then killed (-9); while it is down, N
 * server-to-client SENDs are written into those sessions' outboxes (through the store API, in 1,000-row
 * transactions); the node is started again and every client resumes its session on it. Measures the time from the
 * restart until every message has reached its client and until the outboxes are empty (every ACK processed), and
 * counts repeats (a message delivered twice; the target is zero).
 */
export async function backlog(
  config: FaultNodeConfig,
  n: number,
  sessionCount: number,
): Promise<Record<string, number>> {
  const userOf = (i: number): string => `backlog${Math.floor(i / 50)}`;
  let node = await NodeProcess.start(config);
  const sessions = await pooled(
    Array.from({ length: sessionCount }, (_, i) => i),
    100,
    (i) => open(node.url, userOf(i), undefined),
  );
  node.kill('SIGKILL');
  await node.exited;
  for (const s of sessions) s.ws.terminate();

  const store = SqlClusterStore.fromUrl(config.dbUrl, { nodeName: 'bench-backlog-writer', poolMax: 4 });
  const t0 = performance.now();
  const envelope = JSON.stringify({ t: 'SEND', eid: 'Bench.backlog', tid: 'backlog' });
  const chunk = 1000;
  await pooled(
    Array.from({ length: Math.ceil(n / chunk) }, (_, c) => c),
    4,
    async (c) => {
      const rows: OutboxMessageInput[] = [];
      for (let i = c * chunk; i < Math.min(n, (c + 1) * chunk); i++) {
        rows.push({
          sessionId: sessions[i % sessionCount]!.sid,
          smid: `bl${i}`,
          traceId: 'backlog',
          type: 'SEND',
          envelope,
          messageText: JSON.stringify({ i }),
        });
      }
      await store.transaction((trx) => store.storeMessagesInOutbox(rows, trx), 'bench backlog');
    },
  );
  const fillMs = performance.now() - t0;

  const tally: Tally = { unique: new Set(), repeats: 0, onProgress: () => undefined };
  const delivered = new Promise<void>((resolve) => {
    tally.onProgress = () => {
      if (tally.unique.size >= n) resolve();
    };
  });
  const restart = performance.now();
  node = await NodeProcess.start(config);
  const readyMs = performance.now() - restart;
  const resumed = await pooled(sessions, 100, (s) => open(node.url, s.user, tally, s.sid));
  await delivered;
  const deliveredMs = performance.now() - restart;
  // Every ACK reaches the store: poll the outbox depth (a measurement, not a test: no event exists for it).
  const sids = sessions.map((s) => s.sid);
  for (;;) {
    const depths = await store.getOutboxDepths(sids);
    if ([...depths.values()].every((d) => d === 0)) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const emptyMs = performance.now() - restart;
  for (const s of resumed) s.ws.terminate();
  await store.close();
  await node.stop();
  return {
    backlog_messages: n,
    backlog_sessions: sessionCount,
    backlog_fill_ms: Math.round(fillMs),
    backlog_node_ready_ms: Math.round(readyMs),
    backlog_delivered_ms: Math.round(deliveredMs),
    backlog_outbox_empty_ms: Math.round(emptyMs),
    backlog_per_s: Math.round(n / ((emptyMs - readyMs) / 1000)),
    backlog_repeats: tally.repeats,
  };
}
