import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../../logging.ts';

/** The sources the browser bundle is built from (folders are scanned one level deep). */
const BUNDLE_SOURCES = ['src/client', 'src/protocol', 'src/errors.ts', 'src/logging.ts'];

/** Where the bundle the pages load lives, relative to the package root. */
export const BUNDLE_DIR = join('dist', 'browser');
export const BUNDLE_FILE = 'matssocket.iife.js';

function mtimeOf(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

function newestSource(root: string): number {
  let newest = 0;
  for (const source of BUNDLE_SOURCES) {
    const path = join(root, source);
    let entries: string[];
    try {
      entries = statSync(path).isDirectory() ? readdirSync(path).map((f) => join(path, f)) : [path];
    } catch {
      continue;
    }
    for (const file of entries) newest = Math.max(newest, mtimeOf(file));
  }
  return newest;
}

/**
 * Makes sure `dist/browser/matssocket.iife.js` exists and is not older than the client sources, building it with
 * the esbuild-based builder (`scripts/buildBrowser.ts`, the same as `npm run build:browser`) otherwise, so that
 * `npm install && npm start` works on a fresh clone. Without esbuild (a production install) an existing bundle is
 * served as it is. @returns the bundle's folder.
 */
export async function ensureBrowserBundle(root: string, logger: Logger): Promise<string> {
  const dir = join(root, BUNDLE_DIR);
  const bundle = join(dir, BUNDLE_FILE);
  const built = mtimeOf(bundle);
  if (built > 0 && built >= newestSource(root)) return dir;
  try {
    // A literal path, so both tsx and the compiled build resolve it; esbuild is a devDependency.
    const { buildBrowserBundles } = await import('../../../scripts/buildBrowser.ts');
    const started = Date.now();
    await buildBrowserBundles(dir);
    logger.info(
      { bundle, ms: Date.now() - started },
      built > 0 ? 'rebuilt the browser client bundle' : 'built the browser client bundle',
    );
  } catch (err) {
    if (built === 0)
      throw new Error(`the browser client bundle ${bundle} is missing and cannot be built`, { cause: err });
    logger.warn(
      { err, bundle },
      'the browser client bundle is older than its sources and could not be rebuilt',
    );
  }
  return dir;
}
