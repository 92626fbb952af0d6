import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { runPhase, type PhaseResult } from './Driver.ts';

/** The other ceiling: a raw `ws` JSON echo over loopback, `inflight` round trips outstanding over `sockets` sockets. */
export async function rawWsPhase(
  inflight: number,
  sockets: number,
  warmupMs: number,
  measureMs: number,
): Promise<PhaseResult> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => wss.once('listening', resolve));
  wss.on('connection', (ws) => {
    ws.on('message', (data) => {
      const msg = JSON.parse((data as Buffer).toString()) as { id: number };
      ws.send(JSON.stringify({ id: msg.id, data: { string: 'x'.repeat(100) } }));
    });
  });
  const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
  const waiting = new Map<number, () => void>();
  const clients = await Promise.all(
    Array.from({ length: sockets }, async () => {
      const ws = new WebSocket(url);
      ws.on('message', (data) => {
        const { id } = JSON.parse((data as Buffer).toString()) as { id: number };
        const done = waiting.get(id);
        waiting.delete(id);
        done?.();
      });
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      return ws;
    }),
  );
  let seq = 0;
  try {
    return await runPhase(
      'raw ws echo',
      inflight,
      (lane) =>
        new Promise<void>((resolve) => {
          const id = ++seq;
          waiting.set(id, resolve);
          clients[lane % clients.length]!.send(JSON.stringify({ id, data: { string: 'x'.repeat(100) } }));
        }),
      warmupMs,
      measureMs,
    );
  } finally {
    for (const c of clients) c.terminate();
    await new Promise((resolve) => wss.close(resolve));
  }
}
