import { createTestBroker, type TestBroker } from '../../harness/transports.ts';
import { createTestDatabase, type TestDatabase } from '../../harness/databases.ts';
import {
  startPrivateMariaDb,
  startPrivateRabbitMq,
  type PrivateMariaDb,
  type PrivateRabbitMq,
} from '../../harness/privateServices.ts';
import { freePorts } from '../helpers/clientKit.ts';
import { runId } from '../../harness/runState.ts';
import { OutageProxy } from '../faults/OutageProxy.ts';
import { ChaosProcess } from './ChaosProcess.ts';
import { BACKEND, describeAction, type ChaosAction } from './chaosSchedule.ts';

/** A fault action as it ran: the schedule's action and when it really began and ended (ms after the chaos began). */
export interface ChaosLogEntry {
  action: ChaosAction;
  startedMs: number;
  endedMs: number;
}

/** `host`/`port` of a service URL. */
function endpointOf(url: string, defaultPort: number): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || defaultPort) };
}

/** `url` with its port replaced (a proxy's). */
function viaPort(url: string, port: number): string {
  const u = new URL(url);
  u.port = String(port);
  return u.toString();
}

/**
 * The soak's system under test: `nodes` MatsSocket node processes and one backend process on a RabbitMQ node and a
 * MariaDB server of the soak's own (harness/privateServices.ts: the machine's shared services are never restarted),
 * which the schedule restarts for real, gracefully or by `kill -9`. The processes reach them through
 * {@link OutageProxy}s, so that their connections can also be cut while the services stay up, and clients reach
 * each node through a proxy too (cutting client connections is an outage of those). Runs a schedule's actions
 * against them and keeps the log.
 */
export class ChaosCluster {
  readonly nodes: ChaosProcess[] = [];
  readonly log: ChaosLogEntry[] = [];
  readonly #clientProxies: OutageProxy[] = [];
  #backend: ChaosProcess | undefined;
  #rabbitProxy: OutageProxy | undefined;
  #dbProxy: OutageProxy | undefined;
  #t0 = 0;

  readonly rabbit: PrivateRabbitMq;
  readonly mariaDb: PrivateMariaDb;
  readonly db: TestDatabase;
  readonly broker: TestBroker;
  readonly topicId: string;

  private constructor(
    services: { rabbit: PrivateRabbitMq; mariaDb: PrivateMariaDb },
    db: TestDatabase,
    broker: TestBroker,
  ) {
    this.rabbit = services.rabbit;
    this.mariaDb = services.mariaDb;
    this.db = db;
    this.broker = broker;
    this.topicId = `Chaos.topic.${runId}`;
  }

  /**
   * Starts the private services, creates the database, queue prefix and proxies, then starts the processes (the
   * first node alone: it migrates).
   */
  static async start(nodeCount: number): Promise<ChaosCluster> {
    const [rabbit, mariaDb] = await Promise.allSettled([startPrivateRabbitMq(), startPrivateMariaDb()]);
    if (rabbit.status === 'rejected' || mariaDb.status === 'rejected') {
      for (const r of [rabbit, mariaDb]) if (r.status === 'fulfilled') await r.value.close();
      throw [rabbit, mariaDb].find((r) => r.status === 'rejected')!.reason;
    }
    const services = { rabbit: rabbit.value, mariaDb: mariaDb.value };
    let db: TestDatabase | undefined;
    let broker: TestBroker | undefined;
    try {
      db = await createTestDatabase('mysql', services.mariaDb.url);
      broker = await createTestBroker('rabbitmq', services.rabbit);
    } catch (err) {
      await db?.drop();
      await Promise.allSettled([services.rabbit.close(), services.mariaDb.close()]);
      throw err;
    }
    const c = new ChaosCluster(services, db, broker);
    try {
      c.#dbProxy = await OutageProxy.start(endpointOf(c.db.url, 3306));
      c.#rabbitProxy = await OutageProxy.start(endpointOf(c.rabbit.url, 5672));
      const base = {
        instanceName: `C${runId}`,
        amqpUrl: viaPort(c.rabbit.url, c.#rabbitProxy.port),
        dbUrl: viaPort(c.db.url, c.#dbProxy.port),
        queuePrefix: c.broker.prefix,
        topicId: c.topicId,
      };
      const ports = await freePorts(nodeCount);
      ports.forEach((port, i) =>
        c.nodes.push(
          new ChaosProcess('chaosNodeProgram.ts', { ...base, nodeName: `chaos${i + 1}_${runId}`, port }),
        ),
      );
      c.#backend = new ChaosProcess('chaosBackendProgram.ts', { ...base, nodeName: `chaosBackend_${runId}` });
      await c.nodes[0]!.start();
      await Promise.all([c.#backend.start(), ...c.nodes.slice(1).map((n) => n.start())]);
      for (const port of ports) c.#clientProxies.push(await OutageProxy.start({ host: '127.0.0.1', port }));
    } catch (err) {
      await c.stop();
      throw err;
    }
    return c;
  }

  /** The URLs clients use: one proxy per node. */
  get clientUrls(): string[] {
    return this.#clientProxies.map((p) => `ws://127.0.0.1:${p.port}/matssocket`);
  }

  get processes(): ChaosProcess[] {
    return this.#backend ? [...this.nodes, this.#backend] : this.nodes;
  }

  /** ms since {@link run} began (0 before). */
  readonly clock = (): number => (this.#t0 === 0 ? 0 : performance.now() - this.#t0);

  /**
   * Runs the actions one after the other, each at its scheduled time or, when the previous one overran (a restart
   * takes seconds), right after it: the schedule, not the wall clock, is what a replay reproduces.
   */
  async run(actions: readonly ChaosAction[], onAction: (line: string) => void): Promise<void> {
    this.#t0 = performance.now();
    for (const action of actions) {
      const wait = action.atMs - this.clock();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      // Logged before it runs, so a loss seen while it runs is put down to it.
      const entry = { action, startedMs: this.clock(), endedMs: NaN };
      this.log.push(entry);
      await this.#perform(action);
      entry.endedMs = this.clock();
      const startedMs = entry.startedMs;
      onAction(
        `      ${describeAction(action)}: ran t+${(startedMs / 1000).toFixed(1)}s..t+${(entry.endedMs / 1000).toFixed(1)}s`,
      );
    }
  }

  async #perform(a: ChaosAction): Promise<void> {
    const target = (): ChaosProcess => {
      const p = this.processes.find((x) =>
        a.target === BACKEND ? x === this.#backend : x.name === a.target,
      );
      if (!p) throw new Error(`no process ${a.target}`);
      return p;
    };
    switch (a.kind) {
      case 'kill-node':
      case 'kill-backend': {
        const p = target();
        await p.kill9();
        // Dead time of the schedule (not a wait for state): how long the process stays down.
        await new Promise((r) => setTimeout(r, a.durationMs));
        await p.start();
        return;
      }
      case 'rabbitmq-restart':
      case 'rabbitmq-kill':
        return this.rabbit.restart(a.kind === 'rabbitmq-kill' ? 'kill' : 'graceful', a.durationMs);
      case 'mariadb-restart':
      case 'mariadb-kill':
        return this.mariaDb.restart(a.kind === 'mariadb-kill' ? 'kill' : 'graceful', a.durationMs);
      case 'cut-service':
        return (a.target === 'rabbitmq' ? this.#rabbitProxy! : this.#dbProxy!).outage(a.durationMs);
      case 'cut-clients':
        await Promise.all(this.#clientProxies.map((p) => p.outage(a.durationMs)));
        return;
      case 'pause':
        return target().pause(a.durationMs);
    }
  }

  /** The last fault that began before `atMs` (for failure messages: what preceded a loss). */
  faultBefore(atMs: number): string {
    const before = this.log.filter((e) => e.startedMs <= atMs).at(-1);
    return before
      ? `${describeAction(before.action)}, ran from t+${(before.startedMs / 1000).toFixed(1)}s`
      : 'no fault yet';
  }

  /** Stops every process (SIGCONT + SIGTERM, SIGKILL if needed), the proxies, then the private services. */
  async stop(): Promise<void> {
    await Promise.allSettled(this.processes.map((p) => p.stop()));
    const proxies = [...this.#clientProxies, this.#rabbitProxy, this.#dbProxy].filter((p) => p !== undefined);
    await Promise.allSettled(proxies.map((p) => p.close()));
    await Promise.allSettled([this.broker.close(), this.db.drop()]);
    await Promise.allSettled([this.rabbit.close(), this.mariaDb.close()]);
  }
}
