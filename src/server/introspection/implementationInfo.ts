import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The server implementation, from this package's `package.json`. */
export interface ImplementationInfo {
  /** @example 'matssocket-ts' */
  name: string;
  /** @example '0.1.0' */
  version: string;
}

let cached: ImplementationInfo | undefined;

/**
 * This package's name and version, read once from the nearest `package.json` above this file (the repository's
 * under tsx, the installed package's from `dist/`). A missing or unreadable file gives version `unknown`.
 */
export function implementationInfo(): ImplementationInfo {
  cached ??= read(dirname(fileURLToPath(import.meta.url)));
  return cached;
}

function read(from: string): ImplementationInfo {
  for (let dir = from; ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: unknown;
        version?: unknown;
      };
      if (typeof pkg.name === 'string' && typeof pkg.version === 'string') {
        return Object.freeze({ name: pkg.name, version: pkg.version });
      }
    } catch {
      // No (readable) package.json here: look further up.
    }
    if (dirname(dir) === dir) return Object.freeze({ name: 'matssocket-ts', version: 'unknown' });
  }
}
