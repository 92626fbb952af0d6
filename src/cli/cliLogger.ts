import { isatty } from 'node:tty';
import { pino } from 'pino';
import type { Logger } from '../logging.ts';
import type { LogLevel } from './nodeConfig.ts';
import { prettyDestination } from './prettyLog.ts';

/** How the CLI logger writes: `auto` picks `pretty` for a terminal and `json` otherwise. */
export type LogFormat = 'auto' | 'json' | 'pretty';

/**
 * The CLI programs' pino logger, synchronous (nothing is lost at exit), to stdout or, for the compatibility
 * server whose stdout carries only the readiness line, to stderr. A terminal gets one readable line per entry
 * (time, level, message, fields; error stacks only at `debug`/`trace`, colours unless `NO_COLOR` is set);
 * anything else (a pipe, a file, a log collector) gets pino's JSON lines.
 */
export function createCliLogger(
  name: string,
  level: LogLevel,
  stream: 'stdout' | 'stderr',
  format: LogFormat = 'auto',
): Logger {
  const fd = stream === 'stdout' ? 1 : 2;
  const pretty = format === 'pretty' || (format === 'auto' && isatty(fd));
  const color = pretty && isatty(fd) && !process.env.NO_COLOR;
  return pino(
    { name, level, redact: { paths: ['authorization', '*.authorization'], censor: '***' } },
    pretty
      ? prettyDestination(fd, color, level === 'debug' || level === 'trace')
      : pino.destination({ dest: fd, sync: true }),
  );
}
