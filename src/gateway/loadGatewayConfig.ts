import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import { pathText, type ConfigPath, type PathIssue } from './ConfigChecker.ts';
import { checkGatewayConfig, type GatewayConfigDefaults } from './checkGatewayConfig.ts';
import { applyEnvOverrides, type EnvOverride, type EnvRecord } from './envOverrides.ts';
import type { GatewayConfig } from './GatewayConfig.ts';
import { GatewayConfigError, type ConfigIssue } from './GatewayConfigError.ts';

/** Larger files are refused before parsing: a configuration is a few KiB. */
const MAX_FILE_BYTES = 1024 * 1024;
/** YAML aliases expanded at most this often (a "billion laughs" document expands exponentially). */
const MAX_ALIAS_COUNT = 100;

/** Options of {@link loadGatewayConfig} and {@link parseGatewayConfig}. */
export interface LoadGatewayConfigOptions {
  /** The environment whose `MATSSOCKET_*` variables override the file (docs/gateway.md §7). @default {} */
  env?: EnvRecord;
  /** @default the machine's host name and this process's id */
  defaults?: Partial<GatewayConfigDefaults>;
}

/** A loaded, validated configuration and how the environment contributed to it. */
export interface LoadedGatewayConfig {
  readonly config: GatewayConfig;
  /** The environment variables that set fields (names only: values may be secrets). */
  readonly envApplied: readonly string[];
  /** `MATSSOCKET_*` variables that set nothing (for a warning), with the name meant where known. */
  readonly envUnknown: readonly { variable: string; insteadUse: string | undefined }[];
}

/**
 * Reads a YAML or JSON configuration file (JSON is read as the YAML it is), applies the environment overrides and
 * validates it (docs/gateway.md).
 * @throws GatewayConfigError (code `CONFIG_INVALID`) listing every problem with file, line and field path.
 */
export async function loadGatewayConfig(
  file: string,
  options: LoadGatewayConfigOptions = {},
): Promise<LoadedGatewayConfig> {
  let text: string;
  try {
    const bytes = await readFile(file);
    if (bytes.length > MAX_FILE_BYTES) throw new Error(`larger than ${MAX_FILE_BYTES} bytes`);
    text = bytes.toString('utf8');
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err));
    throw new GatewayConfigError(
      file,
      [
        {
          source: file,
          line: undefined,
          column: undefined,
          path: '',
          kind: 'file',
          message: `cannot be read (${why})`,
        },
      ],
      { cause: err },
    );
  }
  return parseGatewayConfig(text, file, options);
}

/**
 * {@link loadGatewayConfig} on text in hand; `source` names it in the issues (a file name).
 * @throws GatewayConfigError listing every problem.
 */
export function parseGatewayConfig(
  text: string,
  source: string,
  options: LoadGatewayConfigOptions = {},
): LoadedGatewayConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new GatewayConfigError(
      source,
      doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        return {
          source,
          line: pos?.line,
          column: pos?.col,
          path: '',
          kind: 'syntax',
          message: e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, ''),
        };
      }),
    );
  }
  const raw: unknown = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  const overridden = applyEnvOverrides(raw, options.env ?? {});
  const { config, issues } = checkGatewayConfig(overridden.document, {
    hostname: options.defaults?.hostname ?? hostname(),
    pid: options.defaults?.pid ?? process.pid,
  });
  if (!config) {
    const located = issues.map((issue) => locate(issue, source, doc, lines, overridden.applied));
    throw new GatewayConfigError(source, sortIssues(located));
  }
  return {
    config,
    envApplied: overridden.applied.map((o) => o.variable),
    envUnknown: overridden.unknown,
  };
}

/** File issues by line, then the environment's. */
function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  const rank = (i: ConfigIssue): number => (i.source.startsWith('MATSSOCKET_') ? Infinity : (i.line ?? 0));
  return issues
    .map((issue, index) => ({ issue, index }))
    .sort((a, b) => rank(a.issue) - rank(b.issue) || a.index - b.index)
    .map((x) => x.issue);
}

function startsWith(path: ConfigPath, prefix: ConfigPath): boolean {
  return prefix.length <= path.length && prefix.every((segment, i) => path[i] === segment);
}

/** Where an issue's value came from: the environment variable that set it, else its line in the file. */
function locate(
  issue: PathIssue,
  source: string,
  doc: Document,
  lines: LineCounter,
  applied: readonly EnvOverride[],
): ConfigIssue {
  const path = pathText(issue.path);
  const env = applied.find((o) => startsWith(issue.path, o.path));
  if (env) {
    return {
      source: env.variable,
      line: undefined,
      column: undefined,
      path,
      kind: issue.kind,
      message: issue.message,
    };
  }
  const offset = offsetOf(doc, issue.path);
  const pos = offset === undefined ? undefined : lines.linePos(offset);
  return { source, line: pos?.line, column: pos?.col, path, kind: issue.kind, message: issue.message };
}

/**
 * The offset of the node at `path`, or of its nearest ancestor present in the document: a mapping entry is
 * located at its key (where a reader looks for it), a sequence item at its start.
 */
function offsetOf(doc: Document, path: ConfigPath): number | undefined {
  let node: unknown = doc.contents;
  let at: number | undefined = path.length === 0 ? doc.contents?.range?.[0] : undefined;
  for (const segment of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(segment));
      if (!pair) break;
      at = (pair.key as Node).range?.[0] ?? at;
      node = pair.value;
    } else if (isSeq(node) && typeof segment === 'number') {
      const item = node.items[segment] as Node | undefined;
      if (!item) break;
      at = item.range?.[0] ?? at;
      node = item;
    } else {
      break;
    }
  }
  return at;
}

/**
 * Validates a configuration given as an object (a program's own, not a file) and applies its defaults.
 * @throws GatewayConfigError listing every problem (without line numbers).
 */
export function resolveGatewayConfig(
  document: unknown,
  options: { source?: string; defaults?: Partial<GatewayConfigDefaults> } = {},
): GatewayConfig {
  const source = options.source ?? 'config';
  const { config, issues } = checkGatewayConfig(document, {
    hostname: options.defaults?.hostname ?? hostname(),
    pid: options.defaults?.pid ?? process.pid,
  });
  if (config) return config;
  throw new GatewayConfigError(
    source,
    issues.map((i) => ({
      source,
      line: undefined,
      column: undefined,
      path: pathText(i.path),
      kind: i.kind,
      message: i.message,
    })),
  );
}
