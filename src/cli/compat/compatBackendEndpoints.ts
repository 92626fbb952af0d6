import type { MatsFactory } from '../../mats/MatsFactory.ts';
import type { MatsSocketServer } from '../../server/MatsSocketServer.ts';
import { concat, matsData, readMatsData, sleep, utf8, type MatsDataTO } from './compatDtos.ts';
import { ClientSideIds } from './compatMatsSocketEndpoints.ts';

/**
 * Registers the backend (Mats) endpoints of docs/compat-test-server.md 6 on a node's factory. `server` is the same
 * node's MatsSocket server, used by the stages that talk to clients.
 */
export function registerCompatBackendEndpoints(server: MatsSocketServer, factory: MatsFactory): void {
  factory.single<MatsDataTO, unknown>('Test.single', (_ctx, incoming) => {
    const msg = readMatsData(incoming);
    return matsData(msg.number * 2, concat(msg.string, ':FromSingle'), msg.sleepTime);
  });

  factory.single<MatsDataTO, unknown>('Test.simpleMats', (_ctx, incoming) => {
    const msg = readMatsData(incoming);
    return matsData(msg.number, concat(msg.string, ':FromSimpleMats'), msg.sleepTime);
  });

  factory.single<MatsDataTO, unknown>('Test.slow', async (_ctx, incoming) => {
    const msg = readMatsData(incoming);
    await sleep(msg.sleepTime);
    return matsData(msg.number, concat(msg.string, ':FromSlow'), msg.sleepTime);
  });

  factory.terminator<unknown, unknown>('Test.server.send', async (ctx, _state, incoming) => {
    const msg = readMatsData(incoming);
    const sessionId = msg.string ?? '';
    const out = matsData(msg.number, msg.string, msg.sleepTime, msg.sleepIncoming);
    if (msg.sleepTime === 2) {
      // Mode 2: outside the stage, without any transaction context.
      const traceId = `${ctx.traceId}:SentFromThread`;
      ctx.doAfterCommit(() =>
        Promise.resolve()
          .then(() => server.send(sessionId, traceId, ClientSideIds.terminator, out))
          .catch((err: unknown) => ctx.log.warn({ err }, 'Test.server.send (thread) failed')),
      );
      return;
    }
    // Mode 1: inside the stage; the outbox write joins the stage transaction.
    await server.send(sessionId, `${ctx.traceId}:SentFromMatsStage`, ClientSideIds.terminator, out);
  });

  factory.terminator<unknown, unknown>(
    'Test.server.requestToClient.viaMats',
    async (ctx, _state, incoming) => {
      const sessionId = ctx.getString('matsSocketSessionId');
      if (sessionId === undefined) throw new Error('missing sideload matsSocketSessionId');
      await server.request(
        sessionId,
        ctx.traceId,
        ClientSideIds.endpoint,
        incoming,
        'Test.server.request.replyReceiver.viaMats',
        'CorrelationString',
        utf8('CorrelationBinary'),
      );
    },
  );

  factory.terminator<unknown, unknown>(
    'Test.server.sendReplyBackToClient.viaMats',
    async (ctx, _state, incoming) => {
      const sessionId = ctx.getString('matsSocketSessionId');
      const resolveReject = ctx.getString('resolveReject');
      if (sessionId === undefined) throw new Error('missing sideload matsSocketSessionId');
      const msg = readMatsData(incoming);
      await server.send(
        sessionId,
        ctx.traceId,
        ClientSideIds.terminator,
        matsData(msg.number, concat(msg.string, `:${resolveReject ?? 'null'}`), msg.sleepTime),
      );
    },
  );
}
