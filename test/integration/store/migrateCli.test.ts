import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const script = fileURLToPath(new URL('../../../src/cli/migrate.ts', import.meta.url));
const tsx = import.meta.resolve('tsx');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the migrate CLI as `npm run migrate` does (tsx), in `cwd`, with `MATSSOCKET_DB_URL` as given. */
function migrate(cwd: string, dbUrl: string | undefined, args: string[] = []): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.MATSSOCKET_DB_URL;
  if (dbUrl !== undefined) env.MATSSOCKET_DB_URL = dbUrl;
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', tsx, script, ...args],
      { cwd, env, timeout: 30_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe('npm run migrate (src/cli/migrate.ts)', function () {
  this.timeout(60_000);
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ms-migrate-cli-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('defaults to data/matssocket.sqlite (creating the folder) and applies both sources, idempotently', async () => {
    const first = await migrate(dir, undefined);
    expect(first.code, first.stderr).to.equal(0);
    expect(existsSync(join(dir, 'data', 'matssocket.sqlite'))).to.be.true;
    expect(first.stdout).to.match(
      /matssocket \(knex_migrations_matssocket\): applied 20250601000000_create_store_tables/,
    );
    expect(first.stdout).to.match(/mats \(knex_migrations_mats\): applied /);
    const again = await migrate(dir, undefined);
    expect(again.code).to.equal(0);
    expect(again.stdout.match(/already at the latest migration/g)).to.have.length(2);
    const status = await migrate(dir, undefined, ['--status']);
    expect(status.code).to.equal(0);
    expect(status.stdout.match(/up to date/g)).to.have.length(2);
  });

  it('fails with exit code 1 and a one-line message, the password redacted, when the database is unreachable', async () => {
    const run = await migrate(dir, 'mysql://root:s3cret-pw@127.0.0.1:1/nodb');
    expect(run.code).to.equal(1);
    expect(run.stderr).to.include('migrate: failed on mysql://root:***@127.0.0.1:1/nodb [DATA_ACCESS]');
    expect(run.stdout + run.stderr).to.not.include('s3cret-pw');
  });

  it('rejects an unsupported URL naming MATSSOCKET_DB_URL, and unknown arguments', async () => {
    const bad = await migrate(dir, 'oracle://u:pw@h/db');
    expect(bad.code).to.equal(1);
    expect(bad.stderr).to.include('[CONFIG_INVALID]').and.include('MATSSOCKET_DB_URL');
    expect(bad.stderr).to.not.include(':pw@');
    const usage = await migrate(dir, `sqlite:${join(dir, 'x.sqlite')}`, ['--bogus']);
    expect(usage.code).to.equal(2);
  });
});
