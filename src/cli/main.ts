/**
 * `npm start`: one MatsSocket node with the demo page, the admin page, `/metrics` and `/health`. By default on the
 * embedded stack (SQLite file `data/matssocket.sqlite`, migrated at start-up, and the in-process broker); with
 * `MATSSOCKET_AMQP_URL` / `MATSSOCKET_DB_URL` on RabbitMQ and MySQL/MariaDB or PostgreSQL. Listens on `HOST:PORT`
 * (default 127.0.0.1:8080). Logs (`LOG_LEVEL`) go to stdout: readable lines on a terminal, pino JSON otherwise.
 * SIGINT/SIGTERM stop gracefully; a second signal forces the exit. The admin API takes `MATSSOCKET_ADMIN_TOKEN` as
 * its bearer token; without it a token is generated and the admin page's URL below carries it.
 */
import { MatsSocketError, NodeNameInUseError } from '../errors.ts';
import { redactUrl } from '../store/database.ts';
import { createCliLogger } from './cliLogger.ts';
import { NODE_READY_MESSAGE } from './demo/readyLine.ts';
import { startDemoNode } from './demo/startDemoNode.ts';
import { ListenError } from './NodeAssembly.ts';
import { readMainNodeConfig } from './nodeConfig.ts';
import { checkStartupTargets } from './startupCheck.ts';
import { StopController } from './StopController.ts';

async function main(): Promise<void> {
  const config = readMainNodeConfig(process.env);
  const logger = createCliLogger('matssocket', config.logLevel, 'stdout');
  logger.info(
    {
      node: config.nodeName,
      broker: config.amqpUrl ? redactUrl(config.amqpUrl) : 'in-process (embedded)',
      db: redactUrl(config.dbUrl),
    },
    'starting the MatsSocket node',
  );
  new StopController({
    logger,
    stop: async () => (await starting.catch(() => undefined))?.stop(),
  }).install();
  // A broker or database that cannot be reached ends the start here, in one line, before any endpoint runs.
  const starting = checkStartupTargets(config).then(() => startDemoNode(config, { logger }));
  const demo = await starting;
  const { urls } = demo;
  logger.info({ url: urls.demo }, `Demo page:       ${urls.demo}`);
  logger.info({ url: urls.admin }, `Admin page:      ${urls.admin}`);
  logger.info({ url: urls.webSocket }, `WebSocket:       ${urls.webSocket}`);
  logger.info({ url: urls.metrics }, `Metrics:         ${urls.metrics}`);
  logger.info({ url: urls.health }, `Health:          ${urls.health}`);
  logger.info({ ...urls, node: demo.node.nodeName, port: demo.node.port }, NODE_READY_MESSAGE);
}

main().catch((err: unknown) => {
  const message =
    err instanceof ListenError
      ? `matssocket: cannot listen: ${err.detail}; set PORT (and HOST)`
      : err instanceof NodeNameInUseError
        ? `matssocket: node name '${err.nodeName}' is in use by a running node: set MATSSOCKET_NODE_NAME to another name, or stop the other node [${err.code}]`
        : err instanceof MatsSocketError
          ? `matssocket: ${err.message} [${err.code}]`
          : `matssocket: failed to start: ${err instanceof Error ? err.message : String(err)}`;
  process.stderr.write(`${redactUrl(message)}\n`);
  process.exit(1);
});
