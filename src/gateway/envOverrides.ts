import { serverOptionGroupDefaults } from '../server/MatsSocketServerOptions.ts';
import { isRecord, type ConfigPath } from './ConfigChecker.ts';

/** The environment, as the CLI hands it over (`process.env`, or a plain object in tests). */
export type EnvRecord = Readonly<Record<string, string | undefined>>;

/** How an environment variable's text becomes a value. */
type ValueKind = 'string' | 'integer' | 'boolean' | 'list';

/** One field that an environment variable may set. */
export interface EnvOverride {
  readonly variable: string;
  readonly path: ConfigPath;
  readonly kind: ValueKind;
}

/** `maxFrameBytes` → `MAX_FRAME_BYTES`. */
function snake(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

function override(path: ConfigPath, kind: ValueKind): EnvOverride {
  return { variable: `MATSSOCKET_${path.map((p) => snake(String(p))).join('_')}`, path, kind };
}

/**
 * Every field an environment variable can set: the scalars and plain lists of the document, named
 * `MATSSOCKET_<PATH>` (`broker.url` → `MATSSOCKET_BROKER_URL`, `limits.maxFrameBytes` →
 * `MATSSOCKET_LIMITS_MAX_FRAME_BYTES`). Not `auth.type` nor `auth.allowInsecureNonLoopback`: turning
 * authentication off must be visible in the file. Not the lists of mappings (`endpoints`, `terminators`, `topics`).
 */
export const ENV_OVERRIDES: readonly EnvOverride[] = [
  override(['nodeName'], 'string'),
  override(['instanceName'], 'string'),
  override(['logLevel'], 'string'),
  override(['listen', 'host'], 'string'),
  override(['listen', 'port'], 'integer'),
  override(['listen', 'path'], 'string'),
  override(['broker', 'url'], 'string'),
  override(['broker', 'queuePrefix'], 'string'),
  override(['broker', 'concurrency'], 'integer'),
  override(['database', 'url'], 'string'),
  override(['database', 'poolMax'], 'integer'),
  override(['publish', 'from'], 'string'),
  override(['allowedOrigins'], 'list'),
  override(['topicReplayRetentionMs'], 'integer'),
  override(['nodeReplyQueues'], 'integer'),
  override(['stopGraceMs'], 'integer'),
  override(['admin', 'token'], 'string'),
  override(['admin', 'allowedHosts'], 'list'),
  override(['serverApi', 'key'], 'string'),
  override(['auth', 'algorithms'], 'list'),
  override(['auth', 'secret'], 'string'),
  override(['auth', 'publicKeyPem'], 'string'),
  override(['auth', 'jwksUrl'], 'string'),
  override(['auth', 'issuer'], 'list'),
  override(['auth', 'audience'], 'list'),
  override(['auth', 'userIdClaim'], 'string'),
  override(['auth', 'rolesClaim'], 'string'),
  override(['auth', 'clockToleranceSec'], 'integer'),
  ...Object.entries(serverOptionGroupDefaults).flatMap(([group, defaults]) =>
    Object.entries(defaults as Record<string, unknown>).map(([key, d]) =>
      override([group, key], typeof d === 'boolean' ? 'boolean' : 'integer'),
    ),
  ),
];

/** Variables of `npm start` and the compatibility server that a gateway does not read, and what it reads instead. */
const OTHER_PROGRAMS: Readonly<Record<string, string>> = {
  MATSSOCKET_DB_URL: 'MATSSOCKET_DATABASE_URL',
  MATSSOCKET_AMQP_URL: 'MATSSOCKET_BROKER_URL',
  MATSSOCKET_QUEUE_PREFIX: 'MATSSOCKET_BROKER_QUEUE_PREFIX',
  MATSSOCKET_CONCURRENCY: 'MATSSOCKET_BROKER_CONCURRENCY',
  MATSSOCKET_ADMIN_HOSTS: 'MATSSOCKET_ADMIN_ALLOWED_HOSTS',
  MATSSOCKET_HOST: 'MATSSOCKET_LISTEN_HOST',
};

/** What {@link applyEnvOverrides} did. */
export interface EnvOverrideResult {
  /** A copy of the document with the overrides set (the input is not changed). */
  readonly document: unknown;
  /** The overrides applied, in table order. */
  readonly applied: readonly EnvOverride[];
  /** `MATSSOCKET_*` variables that set nothing, with the variable meant where it is known. */
  readonly unknown: readonly { variable: string; insteadUse: string | undefined }[];
}

function convert(text: string, kind: ValueKind): unknown {
  switch (kind) {
    case 'string':
      return text;
    case 'integer':
      // Anything else stays text, so the validator reports it as "must be an integer …" under the variable's name.
      return /^-?\d{1,16}$/.test(text) ? Number(text) : text;
    case 'boolean':
      return /^(true|false)$/i.test(text) ? text.toLowerCase() === 'true' : text;
    case 'list':
      return text
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
  }
}

/**
 * Applies the `MATSSOCKET_<PATH>` variables of `env` to a parsed configuration document (docs/gateway.md §7); a
 * pure function, so the library never reads `process.env` itself. An empty variable counts as unset. A document
 * that is not a mapping, or a section that is not one, is left alone for the validator to report.
 */
export function applyEnvOverrides(document: unknown, env: EnvRecord): EnvOverrideResult {
  const applied: EnvOverride[] = [];
  const known = new Set(ENV_OVERRIDES.map((o) => o.variable));
  const unknown = Object.keys(env)
    .filter((v) => v.startsWith('MATSSOCKET_') && !known.has(v) && (env[v] ?? '').trim().length > 0)
    .sort()
    .map((variable) => ({ variable, insteadUse: OTHER_PROGRAMS[variable] }));
  if (!isRecord(document) && document !== null && document !== undefined) {
    return { document, applied, unknown };
  }
  const copy: Record<string, unknown> = isRecord(document) ? structuredClone(document) : {};
  for (const o of ENV_OVERRIDES) {
    const text = env[o.variable]?.trim();
    if (text === undefined || text.length === 0) continue;
    let target: Record<string, unknown> = copy;
    let reachable = true;
    for (const segment of o.path.slice(0, -1)) {
      const key = String(segment);
      const next = target[key] ?? (target[key] = {});
      if (!isRecord(next)) {
        reachable = false;
        break;
      }
      target = next;
    }
    if (!reachable) continue;
    target[String(o.path[o.path.length - 1])] = convert(text, o.kind);
    applied.push(o);
  }
  return { document: copy, applied, unknown };
}
