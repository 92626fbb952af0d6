import type { Logger } from '../../logging.ts';
import type { MatsFactory } from '../../mats/MatsFactory.ts';
import type { MatsSocketServer } from '../../server/MatsSocketServer.ts';
import type { IncomingContext } from '../../server/messaging/EndpointTypes.ts';
import { randomId } from '../../util/ids.ts';

/** The ids the demo page uses (MatsSocket endpoints, client-side ids and topics). */
export const DemoIds = {
  /** Request: forwarded to the backend endpoint of the same name, which answers at once. */
  echo: 'Demo.echo',
  /** Request: forwarded to a backend endpoint that waits `delayMs` before answering. */
  slow: 'Demo.slow',
  /** Send: the server pushes `count` messages to the client terminator {@link DemoIds.pushTerminator}. */
  pushMe: 'Demo.pushMe',
  /** Send: publishes `text` to {@link DemoIds.chatTopic}. */
  publish: 'Demo.publish',
  /** Send: the server sends a message to a client terminator nobody registered; the NACK dead-letters it. */
  poison: 'Demo.poison',
  pushTerminator: 'Demo.push',
  poisonTerminator: 'Demo.noSuchTerminator',
  chatTopic: 'Demo.chat',
  tickerTopic: 'Demo.ticker',
} as const;

/** Upper bound of `Demo.slow`'s delay, in ms. */
const MAX_SLOW_DELAY_MS = 30_000;
/** Upper bound of `Demo.pushMe`'s count. */
const MAX_PUSHES = 10;
/** Pause between pushes of `Demo.pushMe`, in ms. */
const PUSH_INTERVAL_MS = 300;

interface TextMessage {
  text?: unknown;
}

function textOf(message: unknown, max = 500): string {
  const text = (message as TextMessage | undefined)?.text;
  return typeof text === 'string' ? text.slice(0, max) : '';
}

function clamp(value: unknown, min: number, max: number, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value)
    ? Math.min(max, Math.max(min, Math.trunc(value)))
    : fallback;
}

/** Work left for after the handler has returned (it then runs in its own transaction). */
function later(ctx: IncomingContext, delayMs: number, fn: () => Promise<unknown>): void {
  setTimeout(() => {
    // `then(fn)`: a synchronous throw (e.g. the server stopped meanwhile) is caught as well.
    Promise.resolve()
      .then(fn)
      .catch((err: unknown) => ctx.log.warn({ err }, `${ctx.endpointId}: deferred work failed`));
  }, delayMs);
}

/**
 * Registers the demo's MatsSocket endpoints and the backend (Mats) endpoints behind them on one node. The backend
 * endpoints stand in for real services: they run on the broker, in any node.
 */
export function registerDemoEndpoints(server: MatsSocketServer, factory: MatsFactory): void {
  const node = server.nodeName;

  factory.single<unknown, TextMessage>(DemoIds.echo, (ctx, msg) => {
    const text = textOf(msg);
    return {
      text,
      upperCase: text.toUpperCase(),
      length: text.length,
      node,
      traceId: ctx.traceId,
      at: Date.now(),
    };
  });
  factory.single<unknown, TextMessage & { delayMs?: unknown }>(DemoIds.slow, async (_ctx, msg) => {
    const delayMs = clamp(msg?.delayMs, 0, MAX_SLOW_DELAY_MS, 3000);
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    return { text: textOf(msg), waitedMs: delayMs, node, at: Date.now() };
  });

  server.endpoint(DemoIds.echo, { incoming: (ctx) => ctx.forwardEssential(DemoIds.echo, ctx.message ?? {}) });
  server.endpoint(DemoIds.slow, { incoming: (ctx) => ctx.forwardEssential(DemoIds.slow, ctx.message ?? {}) });

  server.terminator(DemoIds.pushMe, (ctx) => {
    const count = clamp((ctx.message as { count?: unknown } | undefined)?.count, 1, MAX_PUSHES, 3);
    const { sessionId, traceId } = ctx;
    for (let n = 1; n <= count; n++) {
      later(ctx, n * PUSH_INTERVAL_MS, () =>
        server.send(sessionId, `${traceId}:push${n}`, DemoIds.pushTerminator, {
          n,
          of: count,
          text: `Server push ${n} of ${count}`,
          node,
          at: Date.now(),
        }),
      );
    }
  });

  server.terminator(DemoIds.publish, async (ctx) => {
    await server.publish(ctx.traceId, DemoIds.chatTopic, {
      from: ctx.userId ?? '?',
      text: textOf(ctx.message, 200),
      node,
      at: Date.now(),
    });
  });

  server.terminator(DemoIds.poison, async (ctx) => {
    await server.send(ctx.sessionId, ctx.traceId, DemoIds.poisonTerminator, {
      text: 'Nobody on the client listens to this terminator: it is NACKed, then dead-lettered.',
      at: Date.now(),
    });
  });
}

/** Publishes a tick to {@link DemoIds.tickerTopic} every `intervalMs` (the demo's periodic topic publication). */
export class DemoTicker {
  readonly #server: MatsSocketServer;
  readonly #intervalMs: number;
  readonly #logger: Logger;
  #timer: NodeJS.Timeout | undefined;
  #tick = 0;

  constructor(server: MatsSocketServer, intervalMs: number, logger: Logger) {
    this.#server = server;
    this.#intervalMs = intervalMs;
    this.#logger = logger;
  }

  /** Starts ticking (no-op when the interval is 0). */
  start(): void {
    if (this.#intervalMs <= 0 || this.#timer) return;
    this.#timer = setInterval(() => {
      const tick = ++this.#tick;
      const message = { tick, node: this.#server.nodeName, at: Date.now() };
      Promise.resolve()
        .then(() => this.#server.publish(`ticker_${randomId(6)}`, DemoIds.tickerTopic, message))
        .catch((err: unknown) => this.#logger.warn({ err }, 'demo ticker publish failed'));
    }, this.#intervalMs);
  }

  /** Stops ticking. Idempotent. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
