import type { Transport } from '../../../src/broker/Transport.ts';
import type { Logger } from '../../../src/logging.ts';
import { MatsFactory } from '../../../src/mats/MatsFactory.ts';
import type { MatsFactoryOptions } from '../../../src/mats/MatsFactoryOptions.ts';
import { MatsMessageStore } from '../../../src/store/MatsMessageStore.ts';
import type { Dialect } from '../../../src/store/database.ts';
import { createTestDatabase, dialectLabel, type TestDatabase } from '../../../harness/databases.ts';
import { requireService } from '../../../harness/services.ts';
import {
  createTestBroker,
  testTransportKinds,
  transportLabel,
  type TestBroker,
  type TestTransportOptions,
  type TransportKind,
} from '../../../harness/transports.ts';

/** One environment the Mats statements run in: a transport kind plus a database dialect. */
export interface MatsEnvKind {
  transport: TransportKind;
  dialect: Dialect;
}

/** What a test gets: the broker, the database, and factories cleaned up after each test. */
export interface MatsEnv {
  readonly kind: MatsEnvKind;
  readonly broker: TestBroker;
  readonly db: TestDatabase;
  /** The queue prefix of this suite (`broker.prefix`). */
  readonly prefix: string;
  /**
   * A factory (one node) on its own new transport, with test timings: 2 attempts, 20 ms retry delay, a fast
   * sweeper. Stopped, and its transport closed, after the current test.
   */
  createFactory(
    nodeName: string,
    options?: Partial<MatsFactoryOptions>,
    transportOptions?: TestTransportOptions,
  ): MatsFactory;
  /** A transport of this broker closed after the current test. */
  createTransport(name: string, options?: TestTransportOptions): Transport;
  /** A unique endpoint id within this suite. */
  uid(base: string): string;
  /** The Mats store on the suite database. */
  readonly store: MatsMessageStore;
}

export const STANDARD_ENVS: readonly MatsEnvKind[] = [
  { transport: 'inmemory', dialect: 'sqlite' },
  { transport: 'rabbitmq', dialect: 'mysql' },
];

export const SQL_ENVS: readonly MatsEnvKind[] = [
  ...STANDARD_ENVS,
  { transport: 'rabbitmq', dialect: 'postgres' },
];

let uidCounter = 0;

/** With MATS_TEST_LOG=1: warnings and errors to the console (debugging a failing test). */
function consoleLogger(node: string): Logger {
  const log: Logger = {
    trace() {},
    debug() {},
    info() {},
    warn: (obj, msg) => console.warn(`[${node}] WARN ${msg ?? ''}`, obj),
    error: (obj, msg) => console.warn(`[${node}] ERROR ${msg ?? ''}`, obj),
    child: () => log,
  };
  return log;
}

/**
 * `describe` blocks for each environment (`in-memory + SQLite`, `RabbitMQ + MariaDB`, and with `envs = SQL_ENVS`
 * also `RabbitMQ + PostgreSQL`), each with its own broker prefix and database. `TEST_TRANSPORTS` filters.
 */
export function describeMats(
  title: string,
  body: (env: () => MatsEnv) => void,
  envs: readonly MatsEnvKind[] = STANDARD_ENVS,
): void {
  const kinds = testTransportKinds();
  for (const kind of envs.filter((e) => kinds.includes(e.transport))) {
    describe(`${title} [${transportLabel[kind.transport]} + ${dialectLabel[kind.dialect]}]`, function () {
      let env: MatsEnv | undefined;
      let cleanups: Array<() => Promise<void>> = [];
      before(async function () {
        this.timeout(60_000);
        if (kind.transport === 'rabbitmq') await requireService(this, 'rabbitmq');
        if (kind.dialect === 'mysql') await requireService(this, 'mariadb');
        if (kind.dialect === 'postgres') await requireService(this, 'postgres');
        const broker = await createTestBroker(kind.transport);
        const db = await createTestDatabase(kind.dialect);
        await MatsMessageStore.migrate(db.knex);
        const store = new MatsMessageStore(db.knex);
        env = {
          kind,
          broker,
          db,
          prefix: broker.prefix,
          store,
          uid: (base) => `${base}${++uidCounter}`,
          createTransport(name, options) {
            const t = broker.createTransport(`${name}${++uidCounter}`, options);
            cleanups.push(() => t.close());
            return t;
          },
          createFactory(nodeName, options = {}, transportOptions) {
            const transport = options.transport ?? this.createTransport(nodeName, transportOptions);
            const factory = new MatsFactory({
              appName: 'MatsTest',
              appVersion: '1.0.0',
              nodeName,
              transport,
              db: db.knex,
              queuePrefix: broker.prefix,
              maxDeliveryAttempts: 2,
              retryDelayMs: 20,
              concurrency: 4,
              outboxSweepIntervalMs: 50,
              outboxSweepMinAgeMs: 300,
              stopGraceMs: 2000,
              ...(process.env.MATS_TEST_LOG ? { logger: consoleLogger(nodeName) } : {}),
              ...options,
            });
            // Stop factories before their transports close (cleanups run in reverse order).
            cleanups.push(() => factory.stop(1000));
            return factory;
          },
        };
      });
      afterEach(async function () {
        this.timeout(30_000);
        const list = cleanups.reverse();
        cleanups = [];
        for (const c of list) await c();
      });
      after(async function () {
        this.timeout(60_000);
        await env?.broker.close();
        await env?.db.drop();
      });
      body(() => {
        if (!env) throw new Error('Mats test env not created (before hook failed?)');
        return env;
      });
    });
  }
}

/** Polls `condition` every 10 ms until it is truthy or `timeoutMs` passes (then throws with `what`). */
export async function waitFor<T>(
  condition: () => T | Promise<T>,
  what: string,
  timeoutMs = 8000,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await condition();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Collects values pushed by endpoints; tests await the n-th value. */
export class Sink<T> {
  readonly items: T[] = [];
  #waiters: Array<{ n: number; resolve: () => void }> = [];

  push = (item: T): void => {
    this.items.push(item);
    this.#waiters = this.#waiters.filter((w) => {
      if (this.items.length >= w.n) w.resolve();
      return this.items.length < w.n;
    });
  };

  /** Resolves with the first `n` items once there are that many, or throws after `timeoutMs`. */
  async take(n = 1, timeoutMs = 8000): Promise<T[]> {
    if (this.items.length < n) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.#waiters.push({ n, resolve })),
        new Promise<never>(
          (_, reject) =>
            (timer = setTimeout(
              () =>
                reject(
                  new Error(
                    `timed out after ${timeoutMs} ms waiting for ${n} items, got ${this.items.length}`,
                  ),
                ),
              timeoutMs,
            )),
        ),
      ]).finally(() => clearTimeout(timer));
    }
    return this.items.slice(0, n);
  }

  async first(timeoutMs?: number): Promise<T> {
    return (await this.take(1, timeoutMs))[0]!;
  }
}

/** Waits until the queue has `depth` messages ready (e.g. a DLQ). */
export async function waitForDepth(
  broker: TestBroker,
  queue: string,
  depth: number,
  timeoutMs = 8000,
): Promise<void> {
  await waitFor(
    async () => (await broker.queueDepth(queue)) >= depth,
    `depth ${depth} of ${queue}`,
    timeoutMs,
  );
}

/** A logger that records every line (for the logging statements). */
export class RecordingLogger {
  readonly lines: Array<{ level: string; obj: Record<string, unknown>; msg: string | undefined }>;
  readonly #bindings: Record<string, unknown>;

  constructor(lines: RecordingLogger['lines'] = [], bindings: Record<string, unknown> = {}) {
    this.lines = lines;
    this.#bindings = bindings;
  }

  #log(level: string, obj: object, msg?: string): void {
    this.lines.push({ level, obj: { ...this.#bindings, ...(obj as Record<string, unknown>) }, msg });
  }

  trace(obj: object, msg?: string): void {
    this.#log('trace', obj, msg);
  }
  debug(obj: object, msg?: string): void {
    this.#log('debug', obj, msg);
  }
  info(obj: object, msg?: string): void {
    this.#log('info', obj, msg);
  }
  warn(obj: object, msg?: string): void {
    this.#log('warn', obj, msg);
  }
  error(obj: object, msg?: string): void {
    this.#log('error', obj, msg);
  }
  child(bindings: Record<string, unknown>): RecordingLogger {
    return new RecordingLogger(this.lines, { ...this.#bindings, ...bindings });
  }
}

/** A deferred "gate" a lambda can wait on until the test opens it. */
export function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}
