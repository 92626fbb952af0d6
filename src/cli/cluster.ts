/**
 * `npm run cluster -- --nodes 3`: a local cluster of demo nodes (the `npm start` node), each in its own process, on
 * RabbitMQ and MySQL/MariaDB or PostgreSQL (README "Clustering and deployment"). It checks that both servers can
 * be reached, creates the database if it is missing and migrates it once, then starts `cluster-1` ... `cluster-N`
 * on consecutive ports with one shared admin token, prints their lines prefixed with their names and a table of
 * their URLs once all are ready. Ctrl-C (or SIGTERM) stops them all gracefully, SIGKILL after a grace period, and
 * exits when every one is gone: 0, or 1 if a node failed. A node that dies is reported and the others keep
 * running, unless `--exit-on-failure`. Flags: `--help` or {@link CLUSTER_USAGE}.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { dirname, extname, join } from 'node:path';
import { isatty } from 'node:tty';
import { fileURLToPath } from 'node:url';
import { ConfigError, DataAccessError, MatsSocketError } from '../errors.ts';
import type { Logger } from '../logging.ts';
import { createDatabaseIfMissing } from '../store/createDatabaseIfMissing.ts';
import { createDatabase, redactUrl } from '../store/database.ts';
import { migrateLatest } from '../store/migrate.ts';
import { createCliLogger } from './cliLogger.ts';
import { CLUSTER_USAGE, clusterNodeName, readClusterOptions, type ClusterOptions } from './clusterOptions.ts';
import { formatClusterTable, formatNodeLine, nodeLogLevel } from './clusterOutput.ts';
import { ClusterSupervisor, describeExit, type NodeExit } from './ClusterSupervisor.ts';
import { ensureBrowserBundle } from './demo/browserBundle.ts';
import { packageRoot } from './demo/packageRoot.ts';
import { checkStartupTargets, describeConnectFailure, type ConnectFailureWording } from './startupCheck.ts';
import { StopController } from './StopController.ts';

/** After SIGTERM, how long the nodes have for their graceful stop (theirs takes 5 s plus closing) before SIGKILL. */
const STOP_GRACE_MS = 15_000;

const WORDING: ConnectFailureWording = {
  broker: {
    setting: '--amqp-url (or MATSSOCKET_AMQP_URL)',
    fallback: "or run 'docker compose up -d --wait' for RabbitMQ, MariaDB and PostgreSQL on 127.0.0.1",
  },
  database: {
    setting: '--database-url (or MATSSOCKET_DB_URL)',
    fallback: "or run 'docker compose up -d --wait' for RabbitMQ, MariaDB and PostgreSQL on 127.0.0.1",
  },
};

/** The ports the nodes will listen on are free now (a node that cannot bind would fail alone, later). */
async function checkPortsFree(host: string, ports: readonly number[]): Promise<void> {
  for (const port of ports) {
    await new Promise<void>((resolve, reject) => {
      const probe = createServer();
      probe.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          new ConfigError(
            '--base-port',
            `${host}:${port} ${err.code === 'EADDRINUSE' ? 'is in use' : `cannot be bound (${err.code ?? err.message})`}: choose another --base-port`,
          ),
        ),
      );
      probe.listen(port, host, () => probe.close(() => resolve()));
    });
  }
}

/** Everything before the first node starts: servers reachable, database created and migrated, ports, bundle. */
async function prepare(options: ClusterOptions, ports: readonly number[], logger: Logger): Promise<void> {
  const { db } = options;
  // The broker first: it has nothing to create, and a database created for a cluster that cannot start is litter.
  await checkStartupTargets({ amqpUrl: options.amqpUrl, db: undefined }, 10_000, WORDING);
  await createDatabaseIfMissing(db, { field: '--database-url' }).then(
    (created) => created && logger.info({ db: redactUrl(db.target) }, 'created the database'),
    (err: unknown) => {
      if (err instanceof ConfigError) throw err;
      throw new DataAccessError(describeConnectFailure('database', db.target, err, WORDING), { cause: err });
    },
  );
  await checkStartupTargets({ amqpUrl: undefined, db }, 10_000, WORDING);
  const knex = createDatabase(db, { poolMax: 2, connectTimeoutMs: 10_000 });
  try {
    for (const r of await migrateLatest(knex)) {
      if (r.applied.length > 0) logger.info({ set: r.name, applied: r.applied }, 'applied migrations');
    }
  } finally {
    await knex.destroy();
  }
  if (options.basePort > 0) await checkPortsFree(options.host, ports);
  // Built once here: N nodes finding it stale would each build it into the same files at once.
  await ensureBrowserBundle(packageRoot(), logger);
}

/** `node main.ts` under tsx when this runs from the sources, `node main.js` when compiled. */
function nodeProgram(): { command: string; args: string[] } {
  const self = fileURLToPath(import.meta.url);
  const main = join(dirname(self), `main${extname(self)}`);
  return { command: process.execPath, args: extname(self) === '.ts' ? ['--import', 'tsx', main] : [main] };
}

async function main(argv: readonly string[]): Promise<void> {
  let options: ClusterOptions;
  try {
    options = readClusterOptions(argv, process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`cluster: ${err.message}\n(npm run cluster -- --help lists the options)\n`);
    process.exit(2);
  }
  if (options.help) {
    process.stdout.write(CLUSTER_USAGE);
    return;
  }
  const logger = createCliLogger('cluster', options.logLevel, 'stdout');
  const generatedToken = options.adminToken === undefined ? randomBytes(32).toString('base64url') : undefined;
  const names = Array.from({ length: options.nodes }, (_, i) => clusterNodeName(i + 1));
  const ports = names.map((_, i) => (options.basePort === 0 ? 0 : options.basePort + i));
  const { command, args } = nodeProgram();
  const supervisor = new ClusterSupervisor({
    command,
    args,
    cwd: packageRoot(),
    env: {
      ...process.env,
      MATSSOCKET_AMQP_URL: options.amqpUrl,
      MATSSOCKET_DB_URL: options.dbUrl,
      MATSSOCKET_ADMIN_TOKEN: options.adminToken ?? generatedToken,
      LOG_LEVEL: nodeLogLevel(options.logLevel),
    },
    nodes: names.map((nodeName, i) => ({
      index: i + 1,
      nodeName,
      env: { MATSSOCKET_NODE_NAME: nodeName, PORT: String(ports[i]) },
    })),
    stopGraceMs: STOP_GRACE_MS,
  });
  const pretty = isatty(1);
  const format = {
    nameWidth: Math.max(...names.map((n) => n.length)),
    pretty,
    color: pretty && !process.env.NO_COLOR,
    minLevel: options.logLevel,
  };
  supervisor.on('node:output', ({ index, nodeName, stream, line }) => {
    const text = formatNodeLine(nodeName, index, line, format);
    if (text !== undefined) (stream === 'stdout' ? process.stdout : process.stderr).write(text);
  });

  let failed = false;
  let ready = false;
  const preparing = prepare(options, ports, logger);
  const stopper = new StopController({
    logger,
    stop: async () => {
      await preparing.catch(() => undefined);
      const exits = await supervisor.stop();
      const bad = exits.filter((e) => e.expected && (e.forced || e.code !== 0));
      for (const e of bad)
        logger.error(
          { node: e.nodeName, pid: e.pid },
          `${e.nodeName} did not stop cleanly (${describeExit(e)})`,
        );
      if (bad.length > 0) failed = true;
    },
    hardTimeoutMs: STOP_GRACE_MS + 10_000,
    onForce: () => supervisor.killAll(),
  }).install();
  supervisor.on('node:exit', (e: NodeExit) => {
    if (!ready || e.expected) return;
    const others = supervisor.runningCount;
    if (e.code === 0) {
      // A demo node exits 0 only when told to stop: a signal of its own (a Ctrl-C reaches the whole process group,
      // possibly before ours does), not a failure.
      logger.warn(
        { node: e.nodeName, pid: e.pid },
        `${e.nodeName} stopped (exit 0); ${others} still running`,
      );
      return;
    }
    failed = true;
    logger.error(
      { node: e.nodeName, pid: e.pid, code: e.code, signal: e.signal },
      `NODE DIED: ${e.nodeName} (pid ${e.pid ?? '?'}) exited unexpectedly (${describeExit(e)}); ` +
        (options.exitOnFailure
          ? 'stopping the cluster (--exit-on-failure)'
          : `${others} other node${others === 1 ? '' : 's'} keep running (--exit-on-failure would stop them)`),
    );
    if (options.exitOnFailure) void stopper.requestStop(`${e.nodeName} died`);
  });

  await preparing;
  if (generatedToken !== undefined && !/^(127\.|localhost$|::1$|\[::1\]$)/.test(options.host)) {
    // The nodes take the token as configured and stay silent about it: the warning of `npm start` is ours to give.
    logger.warn(
      { host: options.host },
      `HOST=${options.host} serves other machines, and the admin token generated for the cluster is printed below: ` +
        'anyone who sees this output can administer the nodes. Set MATSSOCKET_ADMIN_TOKEN.',
    );
  }
  logger.info(
    { nodes: options.nodes, broker: redactUrl(options.amqpUrl), db: redactUrl(options.dbUrl) },
    `starting ${names.join(', ')}`,
  );
  const result = await supervisor.start();
  if (result.status === 'failed') {
    failed = true;
    logger.error(
      { node: result.nodeName, pid: result.pid },
      `${result.nodeName} failed to start: ${result.reason}; stopping the cluster`,
    );
    void stopper.requestStop('a node failed to start');
  } else if (result.status === 'ready') {
    ready = true;
    logger.info({ nodes: result.nodes.map((n) => n.nodeName) }, 'MatsSocket cluster ready');
    process.stdout.write(formatClusterTable(result.nodes, generatedToken));
  }
  await supervisor.allExited();
  // Every node is gone (stopped, or died on its own): finish the stop (memoized if already running).
  await stopper.requestStop('every node has exited');
  if (failed) process.exitCode = 1;
}

main(process.argv.slice(2)).catch((err: unknown) => {
  const message =
    err instanceof MatsSocketError
      ? `cluster: ${err.message} [${err.code}]`
      : `cluster: failed: ${err instanceof Error ? err.message : String(err)}`;
  process.stderr.write(`${redactUrl(message)}\n`);
  process.exit(1);
});
