import { pino } from 'pino';
import type { Logger } from '../logging.ts';
import type { LogLevel } from './nodeConfig.ts';

/**
 * The CLI programs' pino logger: JSON lines, synchronous (nothing is lost at exit), to stdout or, for the
 * compatibility server whose stdout carries only the readiness line, to stderr.
 */
export function createCliLogger(name: string, level: LogLevel, stream: 'stdout' | 'stderr'): Logger {
  return pino(
    { name, level, redact: { paths: ['authorization', '*.authorization'], censor: '***' } },
    pino.destination({ dest: stream === 'stdout' ? 1 : 2, sync: true }),
  );
}
