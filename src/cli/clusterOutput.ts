import type { DemoNodeUrls } from './demo/startDemoNode.ts';
import type { LogLevel } from './nodeConfig.ts';
import { formatLogLine } from './prettyLog.ts';

/** pino's level numbers; `silent` hides every log line. */
const LEVEL_VALUES: Readonly<Record<LogLevel, number>> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
  silent: Number.POSITIVE_INFINITY,
};

/** ANSI colours of the node-name prefixes, in turn (cyan, magenta, yellow, blue, green, red). */
const PREFIX_COLORS = [36, 35, 33, 34, 32, 31];

/**
 * The level a node process logs at so that its ready line (`info`) always reaches the cluster; the cluster then
 * shows only what `LOG_LEVEL` asks for ({@link NodeLineFormat.minLevel}).
 */
export function nodeLogLevel(level: LogLevel): LogLevel {
  return LEVEL_VALUES[level] > LEVEL_VALUES.info ? 'info' : level;
}

/** How the lines of the node processes are shown. */
export interface NodeLineFormat {
  /** Width the node names are padded to (the longest name), so the lines align. */
  nameWidth: number;
  /** Rewrite the nodes' pino JSON as readable lines (the cluster's stdout is a terminal). */
  pretty: boolean;
  /** ANSI colours (a terminal, `NO_COLOR` unset). */
  color: boolean;
  /** Log lines below this level are dropped; lines that are not pino JSON are always shown. */
  minLevel: LogLevel;
}

/**
 * One output line of a node process as the cluster prints it: `cluster-2 | <line>`, the line made readable on a
 * terminal. @param index the node's 1-based number (picks the prefix colour) @returns the text with its newline,
 * or undefined when the line is below {@link NodeLineFormat.minLevel}
 */
export function formatNodeLine(
  nodeName: string,
  index: number,
  line: string,
  format: NodeLineFormat,
): string | undefined {
  let level: unknown;
  try {
    level = (JSON.parse(line) as { level?: unknown }).level;
  } catch {
    level = undefined;
  }
  if (typeof level === 'number' && level < LEVEL_VALUES[format.minLevel]) return undefined;
  const withStacks = LEVEL_VALUES[format.minLevel] <= LEVEL_VALUES.debug;
  const body = format.pretty ? formatLogLine(line, format.color, withStacks) : `${line}\n`;
  const name = `${nodeName.padEnd(format.nameWidth)} |`;
  const color = PREFIX_COLORS[(index - 1) % PREFIX_COLORS.length]!;
  const prefix = format.color ? `\u001b[${color}m${name}\u001b[0m` : name;
  return body
    .replace(/\n$/, '')
    .split('\n')
    .map((l) => `${prefix} ${l}\n`)
    .join('');
}

/** A ready node, as the URL table shows it. */
export interface ClusterTableRow {
  nodeName: string;
  pid: number;
  urls: DemoNodeUrls;
}

/**
 * The table printed once every node is ready: one row per node with its pid and URLs, then the admin token.
 * @param generatedToken the admin token when the cluster generated it (shown); undefined when it came from
 *   `MATSSOCKET_ADMIN_TOKEN` (an operator's secret stays out of the output)
 */
export function formatClusterTable(
  rows: readonly ClusterTableRow[],
  generatedToken: string | undefined,
): string {
  const header = ['node', 'pid', 'demo page', 'admin page', 'WebSocket', 'metrics'];
  const cells = rows.map((r) => [
    r.nodeName,
    String(r.pid),
    r.urls.demo,
    r.urls.admin,
    r.urls.webSocket,
    r.urls.metrics,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: readonly string[]): string =>
    c
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  const out = [
    '',
    `MatsSocket cluster: ${rows.length} node${rows.length === 1 ? '' : 's'} ready`,
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...cells.map(line),
    '',
  ];
  const first = rows[0]?.urls.admin;
  if (generatedToken !== undefined && first !== undefined) {
    out.push(`Admin token (every node): ${generatedToken}`, `Admin page:  ${first}#token=${generatedToken}`);
  } else {
    out.push('Admin token (every node): MATSSOCKET_ADMIN_TOKEN');
  }
  out.push('Ctrl-C stops every node.', '');
  return `${out.join('\n')}\n`;
}
