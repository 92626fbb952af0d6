/**
 * `npm run compat-server` (docs/compat-test-server.md): three MatsSocket nodes in one process on 127.0.0.1:8080-8082
 * (`MATSSOCKET_HOST`, `MATSSOCKET_PORTS`), with DummyAuth, the `Test.*` endpoints and the HTTP side channels, on the
 * in-memory broker and SQLite `:memory:` unless `MATSSOCKET_AMQP_URL` / `MATSSOCKET_DB_URL` say otherwise.
 *
 * stdout carries exactly one line, the readiness line; logs go to stderr. SIGINT/SIGTERM or `GET /shutdown` stop
 * gracefully (exit 0); a busy port or a bad variable exits 1 with a one-line message.
 */
import { MatsSocketError } from '../errors.ts';
import { redactUrl } from '../store/database.ts';
import { compatReadyLine, startCompatServer } from './compat/startCompatServer.ts';
import { createCliLogger } from './cliLogger.ts';
import { ListenError } from './NodeAssembly.ts';
import { readCompatServerConfig } from './nodeConfig.ts';
import { StopController } from './StopController.ts';

async function main(): Promise<void> {
  const config = readCompatServerConfig(process.env);
  const logger = createCliLogger('compat-server', config.logLevel, 'stderr');
  logger.info(
    {
      ports: config.ports,
      host: config.host,
      broker: config.amqpUrl ? redactUrl(config.amqpUrl) : 'in-memory',
      db: redactUrl(config.dbUrl),
    },
    'starting the MatsSocket compatibility test server',
  );
  const controller: StopController = new StopController({
    logger,
    // A signal during start-up waits for the start, then stops what was started.
    stop: async () => (await starting.catch(() => undefined))?.stop(),
  }).install();
  const starting = startCompatServer(config, {
    logger,
    onShutdown: () => void controller.requestStop('GET /shutdown'),
  });
  const assembly = await starting;
  process.stdout.write(`${compatReadyLine(assembly)}\n`);
}

main().catch((err: unknown) => {
  const message =
    err instanceof ListenError
      ? `compat-server: cannot listen: ${err.detail}; the ports are fixed: free it, or set MATSSOCKET_PORTS`
      : err instanceof MatsSocketError
        ? `compat-server: ${err.message} [${err.code}]`
        : `compat-server: failed to start: ${err instanceof Error ? err.message : String(err)}`;
  process.stderr.write(`${redactUrl(message)}\n`);
  process.exit(1);
});
