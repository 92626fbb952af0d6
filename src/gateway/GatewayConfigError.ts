import { ConfigError } from '../errors.ts';

/** What kind of problem a {@link ConfigIssue} is; stable, for programs and tests to match on. */
export type ConfigIssueKind =
  /** The file cannot be read. */
  | 'file'
  /** The text is not valid YAML/JSON (or has duplicate keys). */
  | 'syntax'
  /** A required field is missing. */
  | 'required'
  /** A field this version does not know (a typo, or a field of another version). */
  | 'unknown'
  /** Wrong type (a string where a number belongs, ...). */
  | 'type'
  /** A number outside its range, or a string of the wrong length. */
  | 'range'
  /** A string that does not have the required form (an id, a URL, a PEM key, ...). */
  | 'format'
  /** A value not among the allowed ones. */
  | 'enum'
  /** Fields that contradict each other, or ids given twice. */
  | 'conflict';

/** One problem found in a configuration. */
export interface ConfigIssue {
  /** Where the value came from: the file name as given, or the environment variable (`MATSSOCKET_…`). */
  readonly source: string;
  /** 1-based line in the file, where known (not for environment variables). */
  readonly line: number | undefined;
  /** 1-based column in the file, where known. */
  readonly column: number | undefined;
  /** The field's path, e.g. `endpoints[2].timeoutMs`; empty for the whole document. */
  readonly path: string;
  readonly kind: ConfigIssueKind;
  /** What is wrong, e.g. `must be an integer 1..86400000`. */
  readonly message: string;
}

/** `matssocket.yaml:14: endpoints[2].timeoutMs: must be an integer 1..86400000`. */
export function formatConfigIssue(issue: ConfigIssue): string {
  const where = issue.line !== undefined ? `${issue.source}:${issue.line}` : issue.source;
  return issue.path.length > 0 ? `${where}: ${issue.path}: ${issue.message}` : `${where}: ${issue.message}`;
}

/**
 * A gateway configuration with one or more problems, all of them in {@link issues} (and one per line in the
 * message). Code `CONFIG_INVALID`; `field` is the configuration's source (the file name).
 */
export class GatewayConfigError extends ConfigError {
  readonly issues: readonly ConfigIssue[];

  constructor(source: string, issues: readonly ConfigIssue[], options?: { cause?: unknown }) {
    const count = issues.length === 1 ? '1 problem' : `${issues.length} problems`;
    super(source, `${count}\n${issues.map((i) => `  ${formatConfigIssue(i)}`).join('\n')}`);
    this.issues = issues;
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}
