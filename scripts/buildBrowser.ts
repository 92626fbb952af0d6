/**
 * Bundles the client for browsers (`npm run build:browser`):
 * - `dist/browser/matssocket.js`: ESM, named exports, no globals (the package's `matssocket-ts/client/browser`);
 * - `dist/browser/matssocket.d.ts`: its declarations, those of the client entry it is bundled from;
 * - `dist/browser/matssocket.iife.js`: a classic script that sets `globalThis.MatsSocket`.
 * Both bundles target ES2020 with source maps. The build fails if the client reaches a Node built-in.
 */
import { build, type Metafile } from 'esbuild';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** What one build produced. */
export interface BrowserBuildResult {
  /** Absolute paths of the two bundles and of the ESM bundle's declarations. */
  esm: string;
  iife: string;
  types: string;
  /** Every source file bundled (paths relative to the repository root). */
  inputs: string[];
}

function inputsOf(metafile: Metafile | undefined): string[] {
  return Object.keys(metafile?.inputs ?? {});
}

/** Builds both bundles into `outDir` (default `dist/browser` of the repository). */
export async function buildBrowserBundles(
  outDir: string = join(root, 'dist', 'browser'),
): Promise<BrowserBuildResult> {
  const common = {
    absWorkingDir: root,
    entryPoints: ['src/client/index.ts'],
    bundle: true,
    platform: 'browser' as const,
    target: 'es2020',
    sourcemap: true,
    metafile: true,
    logLevel: 'silent' as const,
    legalComments: 'none' as const,
  };
  const esm = join(outDir, 'matssocket.js');
  const iife = join(outDir, 'matssocket.iife.js');
  const [esmResult, iifeResult] = await Promise.all([
    build({ ...common, format: 'esm', outfile: esm }),
    build({
      ...common,
      format: 'iife',
      globalName: 'MatsSocket',
      outfile: iife,
      // `var MatsSocket` is global in a classic script but not in a worker module or an eval; make it explicit.
      footer: { js: 'globalThis.MatsSocket = MatsSocket;' },
    }),
  ]);
  const inputs = [...new Set([...inputsOf(esmResult.metafile), ...inputsOf(iifeResult.metafile)])].sort();
  // The bundle exports exactly what the client entry exports, so its declarations are the entry's, which tsc
  // emits to dist/src/client/ (`npm run build`); the path is relative to dist/browser in the package.
  const types = join(outDir, 'matssocket.d.ts');
  mkdirSync(outDir, { recursive: true });
  writeFileSync(
    types,
    `/** Declarations of matssocket.js: the bundle of the client entry. */\nexport * from '../src/client/index.js';\n`,
  );
  return { esm, iife, types, inputs };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  buildBrowserBundles().then(
    (result) => {
      console.log(`built ${result.esm} and ${result.iife} from ${result.inputs.length} sources`);
    },
    (error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    },
  );
}
