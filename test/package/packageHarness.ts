import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The repository root (the package being packed). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** What `npm pack --json` reports of one tarball. */
export interface PackResult {
  filename: string;
  files: { path: string; size: number }[];
  entryCount: number;
  unpackedSize: number;
}

/** A scratch project with the packed package installed, as a user would have it. */
export interface Consumer {
  /** The temp folder holding the tarball and the project; remove it when done. */
  tmp: string;
  /** The project folder. */
  dir: string;
  pack: PackResult;
}

/** Runs a program with a time limit; rejects with its output on a non-zero exit. */
export async function exec(
  file: string,
  args: readonly string[],
  cwd: string,
  timeoutMs = 120_000,
): Promise<{ stdout: string; stderr: string }> {
  try {
    return await run(file, args, { cwd, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    throw new Error(`${file} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`, {
      cause: err,
    });
  }
}

function installedVersion(name: string): string {
  const manifest = readFileSync(join(repoRoot, 'node_modules', name, 'package.json'), 'utf8');
  return (JSON.parse(manifest) as { version: string }).version;
}

/**
 * `npm pack` of the repository (its `prepack` builds dist/) into a new temp folder, then a scratch project there
 * that installs the tarball, `ws` and `@types/node` (preferring npm's cache; the versions are this repository's,
 * so they are in it after `npm ci`).
 *
 * better-sqlite3 is an optional peer dependency the project would install itself; compiling it takes minutes
 * where no prebuilt binary can be downloaded, so the project gets a link to this repository's built copy instead.
 */
export async function packAndInstall(): Promise<Consumer> {
  const tmp = mkdtempSync(join(tmpdir(), 'matssocket-package-'));
  const { stdout } = await exec('npm', ['pack', '--json', '--pack-destination', tmp], repoRoot, 240_000);
  // prepack's own output (the build) precedes the JSON on stdout.
  const pack = (JSON.parse(stdout.slice(stdout.indexOf('\n[') + 1)) as PackResult[])[0]!;
  const dir = join(tmp, 'consumer');
  mkdirSync(dir);
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }),
  );
  await exec(
    'npm',
    [
      'install',
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      '--ignore-scripts',
      join(tmp, pack.filename),
      `ws@${installedVersion('ws')}`,
      `@types/node@${installedVersion('@types/node')}`,
    ],
    dir,
  );
  symlinkSync(join(repoRoot, 'node_modules', 'better-sqlite3'), join(dir, 'node_modules', 'better-sqlite3'));
  cpSync(join(repoRoot, 'test', 'package', 'fixtures'), dir, { recursive: true });
  cpSync(join(repoRoot, 'examples', 'quickstart.ts'), join(dir, 'quickstart.ts'));
  return { tmp, dir, pack };
}

/** Writes a tsconfig.json for `files` with `skipLibCheck: false`, and type-checks (and emits, unless noEmit). */
export async function typeCheck(
  consumer: Consumer,
  name: string,
  files: readonly string[],
  compilerOptions: Record<string, unknown>,
): Promise<void> {
  const config = join(consumer.dir, `tsconfig.${name}.json`);
  writeFileSync(
    config,
    JSON.stringify({
      compilerOptions: {
        target: 'es2022',
        module: 'nodenext',
        moduleResolution: 'nodenext',
        strict: true,
        exactOptionalPropertyTypes: true,
        skipLibCheck: false,
        ...compilerOptions,
      },
      files,
    }),
  );
  const tsc = join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
  await exec(process.execPath, [tsc, '-p', config], consumer.dir);
}
