import { writeSync } from 'node:fs';

/** pino's numeric levels and how a terminal shows them (ANSI colour codes). */
const LEVELS: Readonly<Record<number, { name: string; color: number }>> = {
  10: { name: 'TRACE', color: 90 },
  20: { name: 'DEBUG', color: 34 },
  30: { name: 'INFO', color: 32 },
  40: { name: 'WARN', color: 33 },
  50: { name: 'ERROR', color: 31 },
  60: { name: 'FATAL', color: 35 },
};

/** Fields every line has, shown in the line's head or not at all (the terminal is this process's own). */
const HEAD_FIELDS = new Set(['level', 'time', 'msg', 'name', 'pid', 'hostname']);

interface LoggedError {
  type?: unknown;
  message?: unknown;
  code?: unknown;
  stack?: unknown;
}

function paint(text: string, code: number, color: boolean): string {
  return color ? `\u001b[${code}m${text}\u001b[0m` : text;
}

function clock(time: unknown): string {
  const date = typeof time === 'number' ? new Date(time) : new Date();
  return date.toISOString().slice(11, 23);
}

function valueText(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value) ?? String(value);
}

/**
 * An error as one line: `Type: message [CODE]`, without its stack. The stack is in the JSON logs (stdout not a
 * terminal) and at level `debug`; on a terminal a failing dependency would otherwise print a screenful per
 * endpoint.
 */
function errorText(err: LoggedError, withStack: boolean): string {
  const type = typeof err.type === 'string' ? `${err.type}: ` : '';
  const code = typeof err.code === 'string' ? ` [${err.code}]` : '';
  const head = `${type}${typeof err.message === 'string' ? err.message : valueText(err.message)}${code}`;
  if (!withStack || typeof err.stack !== 'string') return JSON.stringify(head);
  return `${JSON.stringify(head)}\n${err.stack.split('\n').slice(1).join('\n')}`;
}

/**
 * One pino JSON line as a terminal line: `HH:MM:SS.mmm LEVEL name: message key=value ...` (UTC time, as in the
 * JSON). A line that is not pino's JSON is passed through as it is.
 *
 * @param withStacks show error stacks (the logger's level is `debug` or `trace`)
 */
export function formatLogLine(line: string, color: boolean, withStacks = false): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.endsWith('\n') ? line : `${line}\n`;
  }
  const level = LEVELS[entry.level as number] ?? { name: String(entry.level), color: 0 };
  const parts = [
    paint(clock(entry.time), 90, color),
    paint(level.name.padEnd(5), level.color, color),
    `${typeof entry.name === 'string' ? `${entry.name}: ` : ''}${typeof entry.msg === 'string' ? entry.msg : ''}`,
  ];
  for (const [key, value] of Object.entries(entry)) {
    if (HEAD_FIELDS.has(key) || value === undefined) continue;
    const text =
      (key === 'err' || key === 'error') && value !== null && typeof value === 'object'
        ? errorText(value, withStacks)
        : valueText(value);
    parts.push(`${paint(`${key}=`, 90, color)}${text}`);
  }
  return `${parts.join(' ')}\n`;
}

/**
 * A pino destination that writes {@link formatLogLine}'s text synchronously to a file descriptor (like
 * `pino.destination({ sync: true })`: nothing is lost at exit).
 */
export function prettyDestination(
  fd: number,
  color: boolean,
  withStacks: boolean,
): { write(line: string): void } {
  return {
    write(line: string): void {
      writeSync(fd, formatLogLine(line, color, withStacks));
    },
  };
}
