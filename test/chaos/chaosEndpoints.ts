import type { Logger } from '../../src/logging.ts';
import type { MatsFactory } from '../../src/mats/MatsFactory.ts';
import type { MatsSocketServer } from '../../src/server/MatsSocketServer.ts';

/** The MatsSocket (node) and Mats (backend) endpoint ids of the soak; the same id on both sides. */
export const ChaosIds = {
  echo: 'Chaos.echo',
  push: 'Chaos.push',
  publish: 'Chaos.publish',
  poison: 'Chaos.poison',
  /** The client terminator the pushes go to. */
  pushed: 'Chaos.pushed',
} as const;

/** What the parent passes to a chaos program (node or backend) in `CHAOS_CONFIG`. */
export interface ChaosProgramConfig {
  nodeName: string;
  instanceName: string;
  amqpUrl: string;
  dbUrl: string;
  queuePrefix: string;
  /** Nodes only: the fixed port, so a restarted node is found at the same URL. */
  port?: number;
  /** Nodes only: the topic clients publish to through `Chaos.publish`. */
  topicId?: string;
}

/** A push request: the backend sends `n` messages to the session, numbered `from`, `from + 1`, ... */
export interface PushRequest {
  from: number;
  n: number;
}

/** One pushed message. */
export interface Pushed {
  seq: number;
}

/** A topic message: who published it and its per-publisher number. */
export interface TopicMessage {
  publisher: string;
  n: number;
}

/** The backend endpoints (in the backend process, which has no MatsSocket server). */
export function registerBackendEndpoints(factory: MatsFactory): void {
  factory.single<{ id: string; node: string }, { id: string }>(ChaosIds.echo, (_ctx, msg) => ({
    id: msg.id,
    node: factory.options.nodeName,
  }));
  factory.single<PushRequest, PushRequest>(ChaosIds.push, (_ctx, msg) => msg);
  factory.single<never, unknown>(ChaosIds.poison, () => {
    throw new Error('Chaos.poison always throws');
  });
}

/**
 * The MatsSocket endpoints (on every node). `Chaos.push`'s reply adapter makes the server send the pushes: inside a
 * reply adapter `server.send` joins the transaction that commits the reply, so pushes and reply go out exactly once
 * together or not at all. `Chaos.publish` publishes in its handler (done when the handling commits) and resolves.
 */
export function registerNodeEndpoints(server: MatsSocketServer, topicId: string): void {
  server.endpoint(ChaosIds.echo, { incoming: (ctx) => ctx.forwardEssential(ChaosIds.echo, ctx.message) });
  server.endpoint(ChaosIds.poison, { incoming: (ctx) => ctx.forwardEssential(ChaosIds.poison, ctx.message) });
  server.endpoint<PushRequest, PushRequest>(ChaosIds.push, {
    incoming: (ctx) => ctx.forwardEssential(ChaosIds.push, ctx.message),
    replyAdapter: async (ctx) => {
      const push = ctx.reply as PushRequest;
      for (let i = 0; i < push.n; i++) {
        const pushed: Pushed = { seq: push.from + i };
        await server.send(ctx.sessionId, `${ctx.traceId}.${i}`, ChaosIds.pushed, pushed);
      }
      ctx.resolve(push);
    },
  });
  server.directEndpoint<TopicMessage, { ok: true }>(ChaosIds.publish, async (ctx) => {
    await server.publish(ctx.traceId, topicId, ctx.message);
    ctx.resolve({ ok: true });
  });
}

/** Warnings and errors as one stderr line each (the soak's failure message quotes the last ones per process). */
export function stderrLogger(): Logger {
  const line =
    (level: string) =>
    (obj: object, msg?: string): void => {
      const err = (obj as { err?: unknown }).err;
      const why = err instanceof Error ? ` (${err.message})` : '';
      process.stderr.write(`${level} ${msg ?? ''}${why}\n`);
    };
  const log: Logger = {
    trace() {},
    debug() {},
    info() {},
    warn: line('WARN'),
    error: line('ERROR'),
    child: () => log,
  };
  return log;
}
