#!/usr/bin/env node
/**
 * The `matssocket-ts` command (package.json `bin`; in this repository `npm run serve -- --config <file>`):
 *
 *   matssocket-ts serve --config matssocket.yaml   runs a gateway node from a configuration file (docs/gateway.md)
 *   matssocket-ts check --config matssocket.yaml   validates the file (and the environment) and exits
 *
 * `MATSSOCKET_<PATH>` environment variables override the file's fields. An invalid configuration exits 1 with every
 * problem on its own line (`matssocket.yaml:14: endpoints[2].timeoutMs: must be an integer 1..86400000`). Logs go to
 * stdout (readable on a terminal, pino JSON otherwise). SIGINT/SIGTERM stop gracefully; a second signal forces.
 */
import { parseArgs } from 'node:util';
import { MatsSocketError, NodeNameInUseError } from '../errors.ts';
import type { GatewayConfig } from '../gateway/GatewayConfig.ts';
import { GatewayConfigError } from '../gateway/GatewayConfigError.ts';
import { GatewayNode } from '../gateway/GatewayNode.ts';
import { loadGatewayConfig, type LoadedGatewayConfig } from '../gateway/loadGatewayConfig.ts';
import { redactUrl } from '../store/database.ts';
import { createCliLogger } from './cliLogger.ts';
import { ListenError } from './NodeAssembly.ts';
import { checkStartupTargets } from './startupCheck.ts';
import { StopController } from './StopController.ts';

const USAGE = `Usage:
  matssocket-ts serve --config <file>   run a MatsSocket gateway node from a YAML or JSON configuration
  matssocket-ts check --config <file>   validate the configuration (with the environment's overrides) and exit

The configuration reference is docs/gateway.md; MATSSOCKET_<PATH> environment variables override its fields.`;

/** A command-line mistake: the usage goes with it, exit code 2. */
class UsageError extends Error {}

function parseCommandLine(argv: readonly string[]): { command: 'serve' | 'check'; file: string } {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  if (parsed.values.help) throw new UsageError('');
  const [command, ...rest] = parsed.positionals;
  if (command !== 'serve' && command !== 'check') throw new UsageError(`unknown command '${command ?? ''}'`);
  if (rest.length > 0) throw new UsageError(`unexpected argument '${rest[0]}'`);
  const file = parsed.values.config;
  if (file === undefined || file.length === 0) throw new UsageError('--config <file> is required');
  return { command, file };
}

function summary(config: GatewayConfig): Record<string, unknown> {
  return {
    node: config.nodeName,
    listen: `${config.listen.host}:${config.listen.port}${config.listen.path}`,
    broker:
      config.broker.url.toLowerCase() === 'memory' ? 'in-process (memory)' : redactUrl(config.broker.url),
    queuePrefix: config.broker.queuePrefix,
    database: redactUrl(config.database.url),
    auth: config.auth.type,
  };
}

async function serve(loaded: LoadedGatewayConfig, file: string): Promise<void> {
  const { config } = loaded;
  const logger = createCliLogger('matssocket-gateway', config.logLevel, 'stdout');
  for (const { variable, insteadUse } of loaded.envUnknown) {
    logger.warn(
      { variable },
      `${variable} is not read by the gateway${insteadUse ? `; use ${insteadUse}` : ''}`,
    );
  }
  logger.info(
    { ...summary(config), config: file, env: loaded.envApplied },
    'starting the MatsSocket gateway node',
  );
  new StopController({
    logger,
    stop: async () => (await starting.catch(() => undefined))?.stop(),
  }).install();
  const memory = config.broker.url.toLowerCase() === 'memory';
  const starting = checkStartupTargets(
    { amqpUrl: memory ? undefined : config.broker.url, db: config.database.parsed },
    undefined,
    {
      broker: {
        setting: `broker.url in ${file} (or MATSSOCKET_BROKER_URL)`,
        fallback: "or use 'memory' to try the node alone",
      },
      database: {
        setting: `database.url in ${file} (or MATSSOCKET_DATABASE_URL)`,
        fallback: 'or use a sqlite:<file>',
      },
    },
  ).then(() => GatewayNode.start(config, { logger }));
  const gateway = await starting;
  logger.info(
    { node: config.nodeName, url: gateway.webSocketUrl },
    `MatsSocket gateway ready: ${gateway.webSocketUrl}`,
  );
}

async function main(): Promise<void> {
  const { command, file } = parseCommandLine(process.argv.slice(2));
  const loaded = await loadGatewayConfig(file, { env: process.env });
  if (command === 'check') {
    process.stdout.write(`${file}: valid ${JSON.stringify(summary(loaded.config))}\n`);
    return;
  }
  await serve(loaded, file);
}

main().catch((err: unknown) => {
  if (err instanceof UsageError) {
    process.stderr.write(`${err.message ? `matssocket-ts: ${err.message}\n\n` : ''}${USAGE}\n`);
    process.exit(err.message ? 2 : 0);
  }
  const message =
    err instanceof GatewayConfigError
      ? `matssocket-ts: ${err.message} [${err.code}]`
      : err instanceof ListenError
        ? `matssocket-ts: cannot listen: ${err.detail}; change listen.port/listen.host (or MATSSOCKET_LISTEN_PORT)`
        : err instanceof NodeNameInUseError
          ? `matssocket-ts: node name '${err.nodeName}' is in use by a running node: set nodeName (or MATSSOCKET_NODE_NAME) to another name, or stop the other node [${err.code}]`
          : err instanceof MatsSocketError
            ? `matssocket-ts: ${err.message} [${err.code}]`
            : `matssocket-ts: failed to start: ${err instanceof Error ? err.message : String(err)}`;
  process.stderr.write(`${redactUrl(message)}\n`);
  process.exit(1);
});
