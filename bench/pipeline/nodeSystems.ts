import type { Knex } from 'knex';
import { createTestDatabase } from '../../harness/databases.ts';
import type { FaultNodeConfig } from '../../harness/faultNodeProgram.ts';
import { NodeProcess } from '../../harness/NodeProcess.ts';
import type { NodeCounters } from '../../harness/nodeCounters.ts';
import { runId } from '../../harness/runState.ts';
import { serviceUrls } from '../../harness/services.ts';
import { createTestBroker } from '../../harness/transports.ts';
import { trackProcess, untrackProcess } from './cpu.ts';
import type { CounterProbe } from './Driver.ts';

/** MatsSocket nodes serving `Fault.echo` in child processes, started for a bench phase. */
export interface NodeSystem {
  /** The nodes' WebSocket URLs. */
  urls: string[];
  /** The processes whose CPU the phases charge to this system (besides the bench process with the clients). */
  cpuLabels: string[];
  /**
   * `db_roundtrips` and `broker_msgs` summed over the nodes (`harness/nodeCounters.ts`), and on MariaDB
   * `sql_server`: the server's global `Questions` (every client's statements, so other work on the same
   * server is counted too).
   */
  probe: CounterProbe;
  /** Stops the nodes, drops the database and the queues. */
  stop(): Promise<void>;
}

/** Node's flags for every node process, e.g. `['--cpu-prof', '--cpu-prof-dir=/tmp/prof']`. */
export interface NodeSystemOptions {
  execArgv?: readonly string[];
  /** The AMQP transport's amqplib fast path (`directPublish`, `coalesceWrites`). @default true */
  amqpFastPath?: boolean;
  /**
   * Concurrency (= prefetch) of the nodes' backend stages (`Fault.echo`). The bench gives the same as the peer's
   * backend prefetch: both backends may work on every session's request at once. @default the Mats layer's
   */
  backendConcurrency?: number;
}

/**
 * Two nodes on RabbitMQ and a fresh MariaDB database, each in its own process (as deployed: one event loop each)
 * with the library's production timings; their CPU is charged as `nodes`.
 */
export async function startRabbitMariaNodes(options: NodeSystemOptions = {}): Promise<NodeSystem> {
  const db = await createTestDatabase('mysql');
  const broker = await createTestBroker('rabbitmq');
  const base = { instanceName: `P${runId}`, amqpUrl: serviceUrls.rabbitmq, dbUrl: db.url };
  const configs = [1, 2].map((i) => ({ ...base, nodeName: `pipe${i}_${runId}`, queuePrefix: broker.prefix }));
  const nodes = await startNodes(configs, 'nodes', options, async () => {
    await broker.close();
    await db.drop();
  });
  return {
    urls: nodes.urls,
    cpuLabels: ['nodes', 'rabbitmq', 'mariadb'],
    probe: async () => {
      const [counts, sql] = await Promise.all([nodes.counters(), serverStatements(db.knex)]);
      return { ...counts, sql_server: sql };
    },
    stop: nodes.stop,
  };
}

/**
 * One node on the embedded default of `npm start` (the in-process broker and a SQLite file, assembled by the
 * CLI's `NodeAssembly`) in its own process; its CPU is charged as `embedded`.
 */
export async function startEmbeddedNode(options: NodeSystemOptions = {}): Promise<NodeSystem> {
  const db = await createTestDatabase('sqlite');
  const config = {
    nodeName: `embedded_${runId}`,
    instanceName: `E${runId}`,
    dbUrl: db.url,
    queuePrefix: 'mats.',
  };
  const nodes = await startNodes([config], 'embedded', options, () => db.drop());
  return { urls: nodes.urls, cpuLabels: ['embedded'], probe: nodes.counters, stop: nodes.stop };
}

/** Statements the database server has executed so far (MariaDB's global `Questions`, every client's). */
export async function serverStatements(knex: Knex): Promise<number> {
  const [rows] = (await knex.raw("SHOW GLOBAL STATUS LIKE 'Questions'")) as [{ Value: string }[]];
  return Number(rows[0]!.Value);
}

async function startNodes(
  configs: readonly Omit<FaultNodeConfig, 'timings'>[],
  cpuLabel: string,
  options: NodeSystemOptions,
  cleanUp: () => Promise<void>,
): Promise<{ urls: string[]; counters: () => Promise<Record<string, number>>; stop: () => Promise<void> }> {
  const nodes: NodeProcess[] = [];
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      for (const n of nodes) if (n.child.pid !== undefined) untrackProcess(n.child.pid);
      await Promise.all(nodes.map((n) => n.stop()));
      await cleanUp();
    })());
  try {
    for (const config of configs) {
      const node = await NodeProcess.start(
        {
          ...config,
          timings: 'production',
          amqpFastPath: options.amqpFastPath ?? true,
          ...(options.backendConcurrency !== undefined ? { concurrency: options.backendConcurrency } : {}),
        },
        30_000,
        options.execArgv,
      );
      nodes.push(node);
      trackProcess(cpuLabel, node.child.pid!);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const counters = async (): Promise<Record<string, number>> => {
    const all: NodeCounters[] = await Promise.all(nodes.map((n) => n.counters()));
    return {
      db_roundtrips: all.reduce((a, c) => a + c.dbRoundTrips, 0),
      broker_msgs: all.reduce((a, c) => a + c.brokerPublishes, 0),
    };
  };
  return { urls: nodes.map((n) => n.url), counters, stop };
}
