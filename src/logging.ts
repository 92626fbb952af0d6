/**
 * The logger the library writes to. pino's `Logger` fits as-is; so does anything with these methods.
 * Libraries never `console.*` on their own: the CLI decides where logs go.
 *
 * Convention: first argument an object of structured fields (traceId, stageId, sessionId, ...), then the
 * message: `log.info({ traceId }, 'stage completed')`.
 */
export interface Logger {
  trace(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

class SilentLogger implements Logger {
  trace(): void {}
  debug(): void {}
  info(): void {}
  warn(): void {}
  error(): void {}
  child(): Logger {
    return this;
  }
}

/** A logger that drops everything; the default when none is given. */
export const silentLogger: Logger = new SilentLogger();
