import type { MatsSocketServer } from '../../server/MatsSocketServer.ts';
import type { IncomingContext } from '../../server/messaging/EndpointTypes.ts';
import {
  concat,
  matsData,
  readMatsData,
  readRequestData,
  sameBytes,
  sleep,
  utf8,
  type MatsDataTO,
  type PingPongDTO,
  type ReplyDTO,
} from './compatDtos.ts';
import type { DummyAuthPrincipal } from './DummyAuth.ts';

/** Client-side ids the compatibility server targets (docs/compat-test-server.md 7.1). */
export const ClientSideIds = {
  terminator: 'ClientSide.terminator',
  endpoint: 'ClientSide.endpoint',
  renewAuthTerminator: 'Client.renewAuth_terminator',
  renewAuth: 'MatsSocket.renewAuth',
} as const;

const CORRELATION_STRING = 'CorrelationString';
const CORRELATION_BINARY = utf8('CorrelationBinary');
const RENEW_AUTH_CORRELATION_STRING = '123';
const RENEW_AUTH_CORRELATION_BINARY = new Uint8Array([1, 2, 3]);

/** Delay of `Test.closeThisSession` after its handler returned, in ms (docs/compat-test-server.md §5.3). */
const CLOSE_THIS_SESSION_DELAY_MS = 250;

/** Work "after the handler has returned" (docs/compat-test-server.md §2): a timer the handler leaves behind runs outside its transaction. */
function afterHandler(ctx: IncomingContext, delayMs: number, what: string, fn: () => Promise<unknown>): void {
  setTimeout(() => {
    // `then(fn)`: a synchronous throw (e.g. the server stopped meanwhile) is caught as well.
    Promise.resolve()
      .then(fn)
      .catch((err: unknown) => ctx.log.warn({ err }, `${what} failed`));
  }, delayMs);
}

function checkCorrelation(ctx: IncomingContext, text: string, bytes: Uint8Array): void {
  if (ctx.correlationString !== text || !sameBytes(ctx.correlationBinary, bytes)) {
    throw new Error(`Wrong correlation on ${ctx.endpointId}: ${String(ctx.correlationString)}`);
  }
}

/** RESOLVE/REJECT carry a reply; NACK and TIMEOUT (BR-4) are only logged. */
function replyType(ctx: IncomingContext): 'RESOLVE' | 'REJECT' | undefined {
  if (ctx.messageType === 'RESOLVE' || ctx.messageType === 'REJECT') return ctx.messageType;
  ctx.log.info({ type: ctx.messageType, description: ctx.description }, `${ctx.endpointId}: no reply`);
  return undefined;
}

/**
 * Registers the `Test.*` MatsSocket endpoints of docs/compat-test-server.md 5.3 (the built-ins come with the server).
 * The backend endpoints they forward to are registered by `registerCompatBackendEndpoints`.
 */
export function registerCompatMatsSocketEndpoints(server: MatsSocketServer): void {
  server.endpoint<unknown, ReplyDTO>('Test.single', {
    incoming: (ctx) => {
      const msg = readRequestData(ctx.message);
      ctx.forward('Test.single', matsData(msg.number, msg.string, 0), (init) =>
        init.nonPersistent().setTraceProperty('requestTimestamp', msg.requestTimestamp),
      );
    },
    replyAdapter: (ctx) => {
      const reply = readMatsData(ctx.reply);
      ctx.resolve({
        number1: (reply.string ?? 'null').length,
        number2: reply.number,
        requestTimestamp: ctx.stageContext.getTraceProperty<number>('requestTimestamp') ?? 0,
      });
    },
  });

  server.endpoint<unknown, MatsDataTO>('Test.simpleMats', {
    incoming: (ctx) => ctx.forwardEssential('Test.simpleMats', ctx.message ?? {}),
  });

  server.endpoint<unknown, MatsDataTO>('Test.slow', {
    incoming: async (ctx) => {
      await sleep(readMatsData(ctx.message).sleepIncoming);
      ctx.forwardNonessential('Test.slow', ctx.message ?? {});
    },
  });

  server.directEndpoint<unknown, MatsDataTO>('Test.resolveInIncomingHandler', (ctx) => {
    const msg = readMatsData(ctx.message);
    ctx.resolve(matsData(msg.number, concat(msg.string, ':From_resolveInIncomingHandler'), msg.sleepTime));
  });
  server.directEndpoint<unknown, ReplyDTO>('Test.rejectInIncomingHandler', (ctx) => {
    ctx.reject({ number1: 3, number2: 4, requestTimestamp: readRequestData(ctx.message).requestTimestamp });
  });
  server.directEndpoint('Test.ignoreInIncomingHandler', () => undefined);
  server.directEndpoint('Test.denyInIncomingHandler', (ctx) => ctx.deny());
  server.directEndpoint('Test.throwsInIncomingHandler', () => {
    throw new Error('Exception in incoming handler should NACK');
  });

  server.endpoint<unknown, ReplyDTO>('Test.ignoreInReplyAdapter', {
    incoming: (ctx) => ctx.forwardEssential('Test.single', matsData(1, 'string1', 0)),
    replyAdapter: () => undefined,
  });
  server.endpoint<unknown, ReplyDTO>('Test.resolveInReplyAdapter', {
    incoming: (ctx) => ctx.forwardEssential('Test.single', matsData(1, 'string1', 0)),
    replyAdapter: (ctx) => ctx.resolve({ number1: 1, number2: 2, requestTimestamp: 123 }),
  });
  server.endpoint<unknown, ReplyDTO>('Test.rejectInReplyAdapter', {
    incoming: (ctx) => ctx.forwardEssential('Test.single', matsData(2, 'string2', 0)),
    replyAdapter: (ctx) => ctx.reject({ number1: 1, number2: 2, requestTimestamp: 123 }),
  });
  server.endpoint<unknown, ReplyDTO>('Test.throwsInReplyAdapter', {
    incoming: (ctx) => ctx.forwardEssential('Test.single', matsData(3, 'string3', 0)),
    replyAdapter: () => {
      throw new Error('Exception in reply adapter should REJECT.');
    },
  });

  for (const [id, mode] of [
    ['Test.server.send.matsStage', 1],
    ['Test.server.send.thread', 2],
  ] as const) {
    server.terminator(id, (ctx) => {
      ctx.forwardEssential(
        'Test.server.send',
        matsData(readMatsData(ctx.message).number, ctx.sessionId, mode),
      );
    });
  }

  server.terminator('Test.server.request.direct', async (ctx) => {
    await server.request(
      ctx.sessionId,
      ctx.traceId,
      ClientSideIds.endpoint,
      ctx.message,
      'Test.server.request.replyReceiver.direct',
      CORRELATION_STRING,
      CORRELATION_BINARY,
    );
  });
  server.terminator('Test.server.request.replyReceiver.direct', async (ctx) => {
    checkCorrelation(ctx, CORRELATION_STRING, CORRELATION_BINARY);
    const type = replyType(ctx);
    if (!type) return;
    const msg = readMatsData(ctx.message);
    await server.send(
      ctx.sessionId,
      ctx.traceId,
      ClientSideIds.terminator,
      matsData(msg.number, concat(msg.string, `:${type}`), msg.sleepTime),
    );
  });

  server.terminator('Test.server.request.viaMats', (ctx) => {
    ctx.forwardEssential('Test.server.requestToClient.viaMats', ctx.message ?? {});
  });
  server.terminator('Test.server.request.replyReceiver.viaMats', (ctx) => {
    checkCorrelation(ctx, CORRELATION_STRING, CORRELATION_BINARY);
    const type = replyType(ctx);
    if (!type) return;
    ctx.forward('Test.server.sendReplyBackToClient.viaMats', ctx.message ?? {}, (init) =>
      init.addString('resolveReject', type),
    );
  });

  server.terminator('Test.closeThisSession', (ctx) => {
    const sessionId = ctx.sessionId;
    afterHandler(ctx, CLOSE_THIS_SESSION_DELAY_MS, 'Test.closeThisSession', () =>
      server.closeSession(sessionId, 'Invoked via MatsSocket server-side Terminator Test.closeThisSession'),
    );
  });

  server.terminator('Test.publish', (ctx) => {
    const topic = ctx.message;
    if (typeof topic !== 'string') throw new Error('Test.publish needs the topic id as a JSON string');
    afterHandler(ctx, 0, 'Test.publish', () =>
      server.publish('Test 1 2 3', topic, matsData(Math.PI, 'Test from server!', 42)),
    );
  });

  server.terminator('Test.renewAuth', async (ctx) => {
    await server.request(
      ctx.sessionId,
      ctx.traceId,
      ClientSideIds.renewAuth,
      '',
      'Test.renewAuth_reply',
      RENEW_AUTH_CORRELATION_STRING,
      RENEW_AUTH_CORRELATION_BINARY,
    );
  });
  server.terminator('Test.renewAuth_reply', async (ctx) => {
    checkCorrelation(ctx, RENEW_AUTH_CORRELATION_STRING, RENEW_AUTH_CORRELATION_BINARY);
    if (ctx.messageType !== 'RESOLVE') {
      ctx.log.info({ type: ctx.messageType }, 'Test.renewAuth_reply: not RESOLVE');
      return;
    }
    await server.send(ctx.sessionId, ctx.traceId, ClientSideIds.renewAuthTerminator, ctx.authorizationValue);
  });

  server.directEndpoint<unknown, MatsDataTO>('Test.replyWithCookieAuthorization', (ctx) => {
    const msg = readMatsData(ctx.message);
    const fromCookie = (ctx.principal as DummyAuthPrincipal | undefined)?.authorizationFromCookie ?? null;
    ctx.resolve(matsData(msg.number, fromCookie, msg.sleepTime));
  });

  server.directEndpoint<unknown, PingPongDTO>('Test.matsSocketPing', (ctx) => {
    const ping = ctx.message as PingPongDTO | undefined;
    const pong: PingPongDTO = {};
    if (typeof ping?.payload === 'string') pong.payload = ping.payload;
    if (typeof ping?.number === 'number') pong.number = ping.number * Math.E;
    ctx.resolve(pong);
  });
}
