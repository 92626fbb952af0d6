import {
  MAX_CLIENT_TIMEOUT_OPTION_MS,
  normalizeOrigin,
  serverOptionGroupDefaults,
  serverOptionMinimum,
  type ServerJobOptions,
  type ServerLimits,
  type ServerTimings,
} from '../server/MatsSocketServerOptions.ts';
import type { ConfigChecker } from './ConfigChecker.ts';

/** The server options a configuration passes through: the groups docs/security.md lists, and two more. */
export interface PassThroughServerOptions {
  limits: ServerLimits;
  timings: ServerTimings;
  jobs: ServerJobOptions;
  allowedOrigins: string[] | undefined;
  topicReplayRetentionMs: number | undefined;
  nodeReplyQueues: number | undefined;
}

/**
 * Checks `limits`, `timings` and `jobs` against the server's own option lists (a key the server does not know is
 * an error, as are values below the server's minimum), plus `allowedOrigins`, `topicReplayRetentionMs` and
 * `nodeReplyQueues`. The
 * server validates them again when the node is built.
 */
export function checkServerOptions(
  c: ConfigChecker,
  doc: Record<string, unknown> | undefined,
): PassThroughServerOptions {
  const group = (name: keyof typeof serverOptionGroupDefaults): Record<string, number | boolean> => {
    const defaults = serverOptionGroupDefaults[name] as Record<string, number | boolean>;
    const obj = c.object(doc?.[name], [name], Object.keys(defaults));
    const out: Record<string, number | boolean> = {};
    for (const key of Object.keys(obj ?? {})) {
      if (!(key in defaults)) continue;
      const value =
        typeof defaults[key] === 'boolean'
          ? c.boolean(obj, key, [name])
          : c.integer(
              obj,
              key,
              [name],
              serverOptionMinimum(key),
              key === 'maxClientTimeoutMs' ? MAX_CLIENT_TIMEOUT_OPTION_MS : Number.MAX_SAFE_INTEGER,
            );
      if (value !== undefined) out[key] = value;
    }
    return out;
  };
  const limits = group('limits') as ServerLimits;
  const timings = group('timings') as ServerTimings;
  const jobs = group('jobs') as ServerJobOptions;
  const origins = c.stringList(doc, 'allowedOrigins', [], { maxLength: 2048 });
  const raw = doc?.allowedOrigins;
  (Array.isArray(raw) ? (raw as unknown[]) : []).forEach((origin, i) => {
    if (typeof origin === 'string' && origin.length > 0 && normalizeOrigin(origin) === undefined) {
      c.add(['allowedOrigins', i], 'format', 'must be an origin: scheme://host[:port], no path');
    }
  });
  const topicReplayRetentionMs = c.integer(doc, 'topicReplayRetentionMs', [], 0);
  const nodeReplyQueues = c.integer(doc, 'nodeReplyQueues', [], 0, 64);
  return { limits, timings, jobs, allowedOrigins: origins, topicReplayRetentionMs, nodeReplyQueues };
}
