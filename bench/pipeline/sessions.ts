import { WebSocket } from 'ws';
import { MatsSocketClient } from '../../src/client/MatsSocketClient.ts';
import type { EchoReply } from '../../harness/faultEndpoints.ts';
import { testAuth } from '../../harness/startTestCluster.ts';
import { runPacedPhase, runPhase, type CounterProbe, type PhaseResult } from './Driver.ts';

/** The closed-loop phase of a system and, when asked, its open-loop phase at half that throughput. */
export interface SessionPhases {
  closed: PhaseResult;
  halfMax?: PhaseResult;
  /** The open loop at {@link SessionsRun.alsoAtRatePerS}, when asked. */
  atRate?: PhaseResult;
}

/** What a sessions phase runs against, and how long. */
export interface SessionsRun {
  /** Shown in the result rows, e.g. `MatsSocket RabbitMQ+MariaDB`. */
  name: string;
  sessions: number;
  warmupMs: number;
  measureMs: number;
  /** Also run the open loop at half the closed loop's throughput. */
  halfMax: boolean;
  /** The open loop's rate instead of half the closed loop's, trips/s (same rate for systems compared). */
  openRatePerS?: number;
  /**
   * After the half-max phase, one more open loop at this rate (trips/s): another system's half max, so CPU per trip
   * and latency compare at the same offered load (CPU per trip grows as the rate falls: less to batch, colder CPUs).
   */
  alsoAtRatePerS?: number;
  probe?: CounterProbe;
}

/**
 * The shape users have: `sessions` MatsSocket sessions (our client with its defaults, one user each, its own
 * WebSocket), each with ONE request in flight: the closed loop keeps every session's next `Fault.echo` request
 * going as soon as its reply arrived. With several node URLs the sessions prefer them in turn (they spread over
 * the nodes; replies produced on the other node reach them by poke). Every session is opened and has one round
 * trip done before the warm-up.
 */
export async function sessionsPhases(urls: readonly string[], run: SessionsRun): Promise<SessionPhases> {
  const clients = Array.from({ length: run.sessions }, (_, i) => {
    const preferred = i % urls.length;
    const c = new MatsSocketClient({
      appName: 'Bench',
      appVersion: '1.0.0',
      urls: [...urls.slice(preferred), ...urls.slice(0, preferred)],
      webSocket: WebSocket,
      shuffleUrls: false,
      // No PINGs during a phase: they are not the work measured, and a real client's come every ~15 s.
      initialPingDelayMinMs: 600_000,
      initialPingDelayMaxMs: 600_000,
    });
    c.setCurrentAuthorization(testAuth(`user${i}`));
    return c;
  });
  let seq = 0;
  const roundTrip = async (lane: number): Promise<void> => {
    const id = `s${++seq}`;
    const reply = await clients[lane % clients.length]!.request<EchoReply>('Fault.echo', id, { id });
    if (reply.data.id !== id) throw new Error(`reply for ${reply.data.id} to ${id}`);
  };
  try {
    await Promise.all(clients.map((_, i) => roundTrip(i)));
    const closed = await runPhase(run.name, run.sessions, roundTrip, run.warmupMs, run.measureMs, run.probe);
    if (!run.halfMax) return { closed };
    // Open loop at half the closed loop's rate; trip i goes to session i mod N, so a slow trip can leave a
    // session with more than one request in flight, as a real user clicking on would.
    const halfMax = await runPacedPhase(
      run.openRatePerS !== undefined ? `${run.name} @${run.openRatePerS}/s` : `${run.name} @half`,
      run.openRatePerS ?? closed.perSecond / 2,
      roundTrip,
      run.warmupMs,
      run.measureMs,
      run.probe,
    );
    return { closed, halfMax };
  } finally {
    await Promise.allSettled(clients.map((c) => c.close('bench over')));
  }
}
