import type { MatsFactory } from '../../../src/mats/MatsFactory.ts';
import type { MatsSocketServer } from '../../../src/server/MatsSocketServer.ts';
import type { IncomingContext } from '../../../src/server/messaging/EndpointTypes.ts';
import { createTestDatabase, type TestDatabase } from '../../../harness/databases.ts';
import { RawClient, type Envelope } from '../../helpers/rawClient.ts';
import {
  requireClusterServices,
  startTestCluster,
  testAuth,
  type StartTestClusterOptions,
  type TestCluster,
} from '../../../harness/startTestCluster.ts';
import { testTransportKinds, type TransportKind } from '../../../harness/transports.ts';
import type { Dialect } from '../../../src/store/database.ts';

export interface DataTO {
  number?: number;
  string?: string;
  sleepTime?: number;
  sleepIncoming?: number;
}

/** What a test endpoint saw (for assertions on contexts). */
export interface Seen {
  endpointId: string;
  messageType: string;
  message: unknown;
  traceId: string;
  sessionId: string;
  correlationString: string | undefined;
  correlationBinary: Uint8Array | undefined;
  authorizationValue: string | undefined;
  description: string | undefined;
}

/** Records calls of the test endpoints, per test. */
export class Recorder {
  readonly seen: Seen[] = [];
  #waiters: (() => void)[] = [];

  record(ctx: IncomingContext): void {
    this.seen.push({
      endpointId: ctx.endpointId,
      messageType: ctx.messageType,
      message: ctx.message,
      traceId: ctx.traceId,
      sessionId: ctx.sessionId,
      correlationString: ctx.correlationString,
      correlationBinary: ctx.correlationBinary,
      authorizationValue: ctx.authorizationValue,
      description: ctx.description,
    });
    for (const w of this.#waiters.splice(0)) w();
  }

  count(endpointId: string): number {
    return this.seen.filter((s) => s.endpointId === endpointId).length;
  }

  /** Waits for a recorded call matching `predicate`. */
  async waitFor(predicate: (s: Seen) => boolean, timeoutMs = 3000): Promise<Seen> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.seen.find(predicate);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`no matching endpoint call within ${timeoutMs} ms: ${JSON.stringify(this.seen)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The test endpoints (a subset of docs/compat-test-server.md 5.3/6, plus recorders), registered on every node.
 */
export function registerTestEndpoints(recorder: Recorder) {
  return (server: MatsSocketServer, factory: MatsFactory): void => {
    factory.single<DataTO, DataTO>('Test.single', (_ctx, msg) => ({
      number: (msg.number ?? 0) * 2,
      string: `${msg.string ?? 'null'}:FromSingle`,
      sleepTime: msg.sleepTime ?? 0,
    }));
    factory.single<DataTO, DataTO>('Test.slow', async (_ctx, msg) => {
      if ((msg.sleepTime ?? 0) > 0) await sleep(msg.sleepTime!);
      return {
        number: msg.number ?? 0,
        string: `${msg.string ?? 'null'}:FromSlow`,
        sleepTime: msg.sleepTime ?? 0,
      };
    });
    factory.terminator<unknown, DataTO>('Test.server.send', async (_ctx, _state, msg) => {
      await server.send(msg.string!, 'fromStage', 'ClientSide.terminator', msg);
    });
    factory.terminator<unknown, DataTO>('Test.server.requestToClient.viaMats', async (ctx, _state, msg) => {
      const sid = ctx.getString('matsSocketSessionId')!;
      await server.request(sid, ctx.traceId, 'ClientSide.endpoint', msg, 'Test.replyReceiver', 'viaMats');
    });

    server.endpoint<DataTO, unknown>('Test.single', {
      incoming: (ctx) => {
        recorder.record(ctx);
        ctx.forward('Test.single', { number: ctx.message?.number, string: ctx.message?.string }, (init) =>
          init.nonPersistent().setTraceProperty('requestTimestamp', 123),
        );
      },
      replyAdapter: (ctx) => {
        const reply = ctx.reply as DataTO;
        ctx.resolve({
          number1: (reply.string ?? '').length,
          number2: reply.number,
          requestTimestamp: ctx.stageContext.getTraceProperty('requestTimestamp'),
        });
      },
    });
    server.endpoint<DataTO, DataTO>('Test.slow', {
      incoming: async (ctx) => {
        recorder.record(ctx);
        if ((ctx.message?.sleepIncoming ?? 0) > 0) await sleep(ctx.message?.sleepIncoming ?? 0);
        ctx.forwardNonessential('Test.slow', ctx.message);
      },
    });
    server.endpoint('Test.rejectInReplyAdapter', {
      incoming: (ctx) => ctx.forwardEssential('Test.single', { number: 2, string: 'string2' }),
      replyAdapter: (ctx) => ctx.reject({ number1: 1 }),
    });
    server.endpoint('Test.ignoreInReplyAdapter', {
      incoming: (ctx) => ctx.forwardEssential('Test.single', { number: 1, string: 'string1' }),
      replyAdapter: () => undefined,
    });
    server.endpoint('Test.throwsInReplyAdapter', {
      incoming: (ctx) => ctx.forwardEssential('Test.single', { number: 3, string: 'string3' }),
      replyAdapter: () => {
        throw new Error('Exception in reply adapter should REJECT.');
      },
    });
    server.directEndpoint<DataTO, DataTO>('Test.resolveInIncomingHandler', (ctx) => {
      recorder.record(ctx);
      ctx.resolve({
        number: ctx.message?.number ?? 0,
        string: `${ctx.message?.string ?? 'null'}:From_resolveInIncomingHandler`,
      });
    });
    server.directEndpoint<DataTO, unknown>('Test.rejectInIncomingHandler', (ctx) => {
      recorder.record(ctx);
      ctx.reject({ number1: 3, number2: 4 });
    });
    server.directEndpoint('Test.ignoreInIncomingHandler', (ctx) => recorder.record(ctx));
    server.directEndpoint('Test.denyInIncomingHandler', (ctx) => ctx.deny());
    server.directEndpoint('Test.throwsInIncomingHandler', () => {
      throw new Error('Exception in incoming handler should NACK');
    });
    server.endpoint('Test.badForward', {
      incoming: (ctx) => ctx.forwardEssential('not a valid endpoint id!', {}),
    });
    server.directEndpoint('Test.twoDecisions', (ctx) => {
      ctx.deny();
      ctx.deny();
    });
    server.terminator<DataTO>('Test.server.send.matsStage', (ctx) => {
      recorder.record(ctx);
      ctx.forwardEssential('Test.server.send', {
        number: ctx.message?.number,
        string: ctx.sessionId,
        sleepTime: 1,
      });
    });
    server.terminator<DataTO>('Test.server.send.inHandler', async (ctx) => {
      recorder.record(ctx);
      await server.send(ctx.sessionId, `${ctx.traceId}:inHandler`, 'ClientSide.terminator', ctx.message);
    });
    server.terminator<DataTO>('Test.server.request.direct', async (ctx) => {
      recorder.record(ctx);
      await server.request(
        ctx.sessionId,
        ctx.traceId,
        'ClientSide.endpoint',
        ctx.message,
        'Test.replyReceiver',
        'CorrelationString',
        Buffer.from('CorrelationBinary'),
      );
    });
    server.terminator('Test.replyReceiver', (ctx) => recorder.record(ctx));
    server.terminator<DataTO>('Test.server.request.viaMats', (ctx) => {
      recorder.record(ctx);
      ctx.forwardEssential('Test.server.requestToClient.viaMats', ctx.message);
    });
    server.terminator<string>('Test.publish', (ctx) => {
      recorder.record(ctx);
      void server.publish('pub', ctx.message, { number: Math.PI, string: 'Test from server!' });
    });
    server.terminator<string>('Test.publishInHandler', async (ctx) => {
      recorder.record(ctx);
      await server.publish('pubInHandler', ctx.message, { n: 1 });
    });
    server.terminator('Test.closeThisSession', (ctx) => {
      recorder.record(ctx);
      setTimeout(() => void server.closeSession(ctx.sessionId, 'closeThisSession'), 50);
    });
  };
}

/** Connects a raw client and completes HELLO. */
export async function connectSession(
  url: string,
  userId = 'standard',
  options: { sid?: string; extra?: object[] } = {},
): Promise<{ client: RawClient; welcome: Envelope; sid: string }> {
  const client = await RawClient.connect(url);
  const welcome = await client.hello(testAuth(userId), options);
  return { client, welcome, sid: welcome.sid as string };
}

/** The environments the server suites run in: in-memory + SQLite always, RabbitMQ + MariaDB when selected. */
export const SERVER_ENVS: readonly { transport: TransportKind; dialect: Dialect; label: string }[] = [
  { transport: 'inmemory', dialect: 'sqlite', label: 'in-memory + SQLite' },
  { transport: 'rabbitmq', dialect: 'mysql', label: 'RabbitMQ + MariaDB' },
  // Only with SERVER_TEST_POSTGRES=1 (the required combinations are the two above).
  ...(process.env.SERVER_TEST_POSTGRES === '1'
    ? [{ transport: 'rabbitmq' as const, dialect: 'postgres' as const, label: 'RabbitMQ + PostgreSQL' }]
    : []),
];

/** A cluster per environment for a suite: `describe(title [env])`, with `before`/`after` doing start/stop. */
export function describeEachServerEnv(
  title: string,
  options: Omit<StartTestClusterOptions, 'db' | 'transport' | 'endpoints'> & { envs?: readonly string[] },
  body: (ctx: () => { cluster: TestCluster; recorder: Recorder; env: (typeof SERVER_ENVS)[number] }) => void,
): void {
  const kinds = testTransportKinds();
  for (const env of SERVER_ENVS.filter(
    (e) => kinds.includes(e.transport) && (!options.envs || options.envs.includes(e.label)),
  )) {
    describe(`${title} [${env.label}]`, function () {
      this.timeout(20_000);
      let db: TestDatabase | undefined;
      let cluster: TestCluster | undefined;
      const recorder = new Recorder();
      before(async function () {
        this.timeout(60_000);
        await requireClusterServices(this, env.transport, env.dialect);
        db = await createTestDatabase(env.dialect);
        cluster = await startTestCluster({
          ...options,
          db,
          transport: env.transport,
          endpoints: registerTestEndpoints(recorder),
        });
      });
      after(async function () {
        this.timeout(30_000);
        await cluster?.stop();
        await db?.drop();
      });
      body(() => {
        if (!cluster) throw new Error('cluster not started');
        return { cluster, recorder, env };
      });
    });
  }
}

/** Waits until every cmid was answered with `t` (ACK/NACK), folded into `ids` or not. */
export async function waitAnswered(
  client: RawClient,
  t: 'ACK' | 'NACK',
  cmids: string[],
  timeoutMs = 3000,
): Promise<void> {
  const missing = new Set(cmids);
  while (missing.size > 0) {
    const e = await client.next(
      (x) =>
        x.t === t &&
        ((typeof x.cmid === 'string' && missing.has(x.cmid)) ||
          (Array.isArray(x.ids) && x.ids.some((id) => missing.has(id as string)))),
      timeoutMs,
    );
    if (typeof e.cmid === 'string') missing.delete(e.cmid);
    for (const id of (e.ids as string[] | undefined) ?? []) missing.delete(id);
  }
}
