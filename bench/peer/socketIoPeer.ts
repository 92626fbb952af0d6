import * as amqp from 'amqplib';
import { io, type Socket } from 'socket.io-client';
import type { SessionPhases, SessionsRun } from '../pipeline/sessions.ts';
import { runPacedPhase, runPhase } from '../pipeline/Driver.ts';
import { BenchProcess } from './BenchProcess.ts';
import { peerQueueNames, type PeerConfig } from './peerQueues.ts';

/** The processes whose CPU the peer's phases are charged with (besides the bench process with the clients). */
export const PEER_CPU_LABELS = ['peer-server', 'peer-backend', 'rabbitmq'];

/**
 * The peer a Node user would build instead of MatsSocket, run as two processes beside the bench: a Socket.IO
 * server forwarding each request over RabbitMQ (`socketIoServerProgram.ts`) and a backend consuming the requests
 * and replying (`amqpBackendProgram.ts`), their CPU charged as `peer-server` and `peer-backend`. `run.sessions`
 * socket.io-client clients in this process, WebSocket transport only, one user each, one request in flight each
 * (`emitWithAck`), as in `sessionsPhases`. `broker_msgs` counts both processes' publishes.
 */
export async function socketIoPeerPhases(
  amqpUrl: string,
  prefix: string,
  run: Omit<SessionsRun, 'probe'>,
): Promise<SessionPhases> {
  const config: PeerConfig = { amqpUrl, prefix, prefetch: run.sessions };
  const programs: BenchProcess[] = [];
  const sockets: Socket[] = [];
  try {
    programs.push(
      await BenchProcess.start('peer-backend', new URL('./amqpBackendProgram.ts', import.meta.url), config),
    );
    const server = await BenchProcess.start(
      'peer-server',
      new URL('./socketIoServerProgram.ts', import.meta.url),
      config,
    );
    programs.push(server);
    for (let i = 0; i < run.sessions; i++) {
      sockets.push(io(server.ready, { transports: ['websocket'], auth: { user: `user${i}` } }));
    }
    await Promise.all(
      sockets.map(
        (s) =>
          new Promise<void>((resolve, reject) => {
            s.once('connect', () => resolve());
            s.once('connect_error', reject);
          }),
      ),
    );
    let seq = 0;
    const roundTrip = async (lane: number): Promise<void> => {
      const id = `p${++seq}`;
      const reply = (await sockets[lane % sockets.length]!.timeout(45_000).emitWithAck('request', {
        id,
      })) as {
        id?: string;
        error?: string;
      };
      if (reply.id !== id) throw new Error(reply.error ?? `reply for ${reply.id} to ${id}`);
    };
    const probe = async (): Promise<Record<string, number>> => {
      const counts = await Promise.all(programs.map((p) => p.counters()));
      return { broker_msgs: counts.reduce((a, c) => a + (c.brokerPublishes ?? 0), 0) };
    };
    await Promise.all(sockets.map((_, i) => roundTrip(i)));
    const closed = await runPhase(run.name, run.sessions, roundTrip, run.warmupMs, run.measureMs, probe);
    if (!run.halfMax) return { closed };
    const halfMax = await runPacedPhase(
      run.openRatePerS !== undefined ? `${run.name} @${run.openRatePerS}/s` : `${run.name} @half`,
      run.openRatePerS ?? closed.perSecond / 2,
      roundTrip,
      run.warmupMs,
      run.measureMs,
      probe,
    );
    if (run.alsoAtRatePerS === undefined) return { closed, halfMax };
    const atRate = await runPacedPhase(
      `${run.name} @${Math.round(run.alsoAtRatePerS)}/s`,
      run.alsoAtRatePerS,
      roundTrip,
      run.warmupMs,
      run.measureMs,
      probe,
    );
    return { closed, halfMax, atRate };
  } finally {
    for (const s of sockets) s.disconnect();
    await Promise.all(programs.map((p) => p.stop()));
    await deleteQueues(amqpUrl, prefix);
  }
}

/** Removes the peer's queues (the processes are gone; nothing else uses them). */
async function deleteQueues(amqpUrl: string, prefix: string): Promise<void> {
  const connection = await amqp.connect(amqpUrl);
  try {
    const channel = await connection.createChannel();
    for (const q of Object.values(peerQueueNames(prefix))) await channel.deleteQueue(q);
  } finally {
    await connection.close();
  }
}
