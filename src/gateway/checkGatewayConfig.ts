import { hostNameOf, isValidBearerToken, MIN_BEARER_TOKEN_LENGTH } from '../ops/bearerCheck.ts';
import { LOG_LEVELS } from '../cli/nodeConfig.ts';
import { ConfigError } from '../errors.ts';
import { parseDatabaseUrl, type DatabaseUrl } from '../store/database.ts';
import { checkAuth } from './checkAuth.ts';
import { checkRouting } from './checkRouting.ts';
import { checkServerOptions } from './checkServerOptions.ts';
import { ConfigChecker, pathText, type PathIssue } from './ConfigChecker.ts';
import type { GatewayConfig } from './GatewayConfig.ts';

/** The top-level fields of a configuration document. */
export const GATEWAY_CONFIG_FIELDS = [
  'nodeName',
  'instanceName',
  'logLevel',
  'listen',
  'broker',
  'database',
  'endpoints',
  'terminators',
  'topics',
  'publish',
  'limits',
  'timings',
  'jobs',
  'allowedOrigins',
  'topicReplayRetentionMs',
  'nodeReplyQueues',
  'stopGraceMs',
  'admin',
  'serverApi',
  'auth',
] as const;

/** What the defaults that depend on the machine are made of. */
export interface GatewayConfigDefaults {
  /** For the default node name `<hostname>-<port>`. */
  hostname: string;
  /** For the default node name when the port is 0: `<hostname>-pid<pid>`. */
  pid: number;
}

const NAME = /^[A-Za-z0-9._-]{1,200}$/;
const INSTANCE = /^[A-Za-z0-9_-]{1,100}$/;
const PREFIX = /^[A-Za-z0-9._-]{1,100}$/;
const SECRET_RULE = `at least ${MIN_BEARER_TOKEN_LENGTH} visible ASCII characters without spaces`;

/**
 * Checks a parsed configuration document (environment overrides already applied) and resolves its defaults
 * (docs/gateway.md §2). Every problem is collected: the result has a config only when there are none.
 */
export function checkGatewayConfig(
  document: unknown,
  defaults: GatewayConfigDefaults,
): { config: GatewayConfig | undefined; issues: readonly PathIssue[] } {
  const c = new ConfigChecker();
  const doc = c.object(document, [], GATEWAY_CONFIG_FIELDS, true);

  const listen = c.object(doc?.listen, ['listen'], ['host', 'port', 'path']);
  const host = c.string(listen, 'host', ['listen'], { maxLength: 255 }) ?? '127.0.0.1';
  const port = c.integer(listen, 'port', ['listen'], 0, 65535) ?? 8080;
  const path =
    c.string(listen, 'path', ['listen'], {
      pattern: /^\/[\x21-\x7e]*$/,
      describe: "a path starting with '/'",
    }) ?? '/matssocket';
  const machine = defaults.hostname.replace(/[^A-Za-z0-9._-]/g, '_') || 'node';
  const nodeName =
    c.string(doc, 'nodeName', [], { pattern: NAME, describe: 'A-Z a-z 0-9 . _ -, 1 to 200 characters' }) ??
    `${machine}-${port === 0 ? `pid${defaults.pid}` : port}`;
  const instanceName =
    c.string(doc, 'instanceName', [], {
      pattern: INSTANCE,
      describe: 'A-Z a-z 0-9 _ -, 1 to 100 characters',
    }) ?? 'MatsSocket';
  const logLevel = c.oneOf(doc, 'logLevel', [], LOG_LEVELS) ?? 'info';

  const broker = c.object(doc?.broker, ['broker'], ['url', 'queuePrefix', 'concurrency'], true);
  const brokerUrl = c.string(broker, 'url', ['broker'], {
    required: true,
    pattern: /^(memory|amqps?:\/\/.+)$/i,
    describe: "'memory' or an amqp:// or amqps:// URL",
  });
  const queuePrefix =
    c.string(broker, 'queuePrefix', ['broker'], {
      pattern: PREFIX,
      describe: 'A-Z a-z 0-9 . _ -, 1 to 100 characters',
    }) ?? 'mats.';
  const concurrency = c.integer(broker, 'concurrency', ['broker'], 1, 1000);

  const database = c.object(doc?.database, ['database'], ['url', 'poolMax'], true);
  const databaseUrl = c.string(database, 'url', ['database'], { required: true, maxLength: 4096 });
  let parsed: DatabaseUrl | undefined;
  if (databaseUrl !== undefined) {
    try {
      parsed = parseDatabaseUrl(databaseUrl, 'database.url');
    } catch (err) {
      const detail =
        err instanceof ConfigError
          ? err.message.replace(/^Invalid configuration '[^']*': /, '')
          : String(err);
      c.add(['database', 'url'], 'format', detail);
    }
  }
  const poolMax = c.integer(database, 'poolMax', ['database'], 1, 1000) ?? 10;

  const routing = checkRouting(c, doc);
  const server = checkServerOptions(c, doc);
  const stopGraceMs = c.integer(doc, 'stopGraceMs', [], 0, 600_000) ?? 5000;

  const admin = c.object(doc?.admin, ['admin'], ['token', 'allowedHosts']);
  const adminToken = secret(c, admin, 'token', ['admin']);
  const allowedHosts = c.stringList(admin, 'allowedHosts', ['admin'], { maxLength: 255 }) ?? [];
  allowedHosts.forEach((h, i) => {
    if (hostNameOf(h) !== h.toLowerCase())
      c.add(['admin', 'allowedHosts', i], 'format', 'must be a host name without port');
  });
  const serverApi = c.object(doc?.serverApi, ['serverApi'], ['key']);
  const serverApiKey = secret(c, serverApi, 'key', ['serverApi']);

  const hostInvalid = c.issues.some((i) => ['listen', 'listen.host'].includes(pathText(i.path)));
  const auth = checkAuth(c, doc?.auth, hostInvalid ? undefined : host);

  if (c.issues.length > 0 || !auth || brokerUrl === undefined || databaseUrl === undefined || !parsed) {
    return { config: undefined, issues: c.issues };
  }
  return {
    config: {
      nodeName,
      instanceName,
      logLevel,
      listen: { host, port, path },
      broker: { url: brokerUrl, queuePrefix, concurrency },
      database: { url: databaseUrl, parsed, poolMax },
      ...routing,
      ...server,
      stopGraceMs,
      admin: { token: adminToken, allowedHosts: allowedHosts.map((h) => h.toLowerCase()) },
      serverApi: { key: serverApiKey },
      auth,
    },
    issues: [],
  };
}

function secret(
  c: ConfigChecker,
  obj: Record<string, unknown> | undefined,
  key: string,
  path: readonly string[],
): string | undefined {
  const value = c.string(obj, key, path, { maxLength: 1024 });
  if (value !== undefined && !isValidBearerToken(value)) {
    c.add([...path, key], 'format', `must be ${SECRET_RULE}`);
    return undefined;
  }
  return value;
}
