/**
 * Copies the admin page's static files (`src/ops/admin/`) next to the compiled handler (`dist/src/ops/admin/`), where
 * `createAdminPageHandler` reads them in the package (`npm run build:admin`, part of `npm run build`).
 */
import { cpSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ADMIN_PAGE_FILES } from '../src/ops/adminPageHandler.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Copies the page's files into `outDir` (default `dist/src/ops/admin`). @returns the files copied. */
export function copyAdminPage(outDir: string = join(root, 'dist', 'src', 'ops', 'admin')): string[] {
  const from = join(root, 'src', 'ops', 'admin');
  const files = Object.keys(ADMIN_PAGE_FILES);
  const present = new Set(readdirSync(from));
  const missing = files.filter((f) => !present.has(f));
  if (missing.length > 0) throw new Error(`admin page files missing in ${from}: ${missing.join(', ')}`);
  for (const file of files) cpSync(join(from, file), join(outDir, file));
  return files.map((f) => join(outDir, f));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    console.log(`copied ${copyAdminPage().length} admin page files`);
  } catch (error) {
    console.error(error);
    process.exitCode = 1;
  }
}
