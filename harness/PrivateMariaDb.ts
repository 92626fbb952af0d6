import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createDatabase } from '../src/store/database.ts';
import {
  envWithout,
  findProgram,
  freePort,
  PrivateServiceProcess,
  tcpOpen,
  type PrivateServiceTimings,
  type ServiceCommand,
} from './PrivateServiceProcess.ts';

const execFileAsync = promisify(execFile);

/** The MariaDB programs this machine has, or undefined when one is missing. */
export function mariaDbPrograms(): { server: string; installDb: string } | undefined {
  const server = findProgram('mariadbd');
  const installDb = findProgram('mariadb-install-db');
  return server && installDb ? { server, installDb } : undefined;
}

/**
 * A MariaDB server of the test's own (see {@link PrivateServiceProcess}): a data directory made by
 * `mariadb-install-db` (root without password), `mariadbd --no-defaults` bound to 127.0.0.1 on a free port.
 * SIGTERM is its graceful shutdown; `kill -9` leaves InnoDB to recover at the next start.
 */
export class PrivateMariaDb extends PrivateServiceProcess {
  readonly label: string;
  readonly port: number;
  /** `mysql://root@127.0.0.1:<port>`: the server (no database), as `serviceUrls.mariadb` is for the shared one. */
  readonly url: string;
  readonly #programs: { server: string; installDb: string };

  private constructor(port: number, timings: PrivateServiceTimings) {
    super('mariadb', timings);
    const programs = mariaDbPrograms();
    if (!programs) throw new Error('mariadbd or mariadb-install-db not found (install mariadb-server)');
    this.#programs = programs;
    this.port = port;
    this.url = `mysql://root@127.0.0.1:${port}`;
    this.label = `private MariaDB (127.0.0.1:${port}, ${this.dir})`;
  }

  /** Creates and starts one. */
  static async start(timings: PrivateServiceTimings = {}): Promise<PrivateMariaDb> {
    const db = new PrivateMariaDb(await freePort(), timings);
    try {
      await db.start();
    } catch (err) {
      await db.close();
      throw err;
    }
    return db;
  }

  get #dataDir(): string {
    return join(this.dir, 'data');
  }

  protected async prepare(): Promise<void> {
    mkdirSync(this.#dataDir);
    try {
      await execFileAsync(
        this.#programs.installDb,
        [
          '--no-defaults',
          '--auth-root-authentication-method=normal',
          '--skip-test-db',
          `--datadir=${this.#dataDir}`,
          ...asRoot(),
        ],
        { cwd: this.dir, timeout: 120_000, env: envWithout(['MYSQL', 'MARIADB']) },
      );
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      throw new Error(
        `${this.label}: mariadb-install-db failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`,
        { cause: err },
      );
    }
  }

  protected command(): ServiceCommand {
    return {
      file: this.#programs.server,
      args: [
        '--no-defaults',
        `--datadir=${this.#dataDir}`,
        `--port=${this.port}`,
        '--bind-address=127.0.0.1',
        `--socket=${join(this.dir, 'mysqld.sock')}`,
        `--pid-file=${join(this.dir, 'mysqld.pid')}`,
        `--log-error=${join(this.dir, 'error.log')}`,
        '--skip-name-resolve',
        '--skip-log-bin',
        '--max-connections=500',
        ...asRoot(),
      ],
      env: envWithout(['MYSQL', 'MARIADB']),
    };
  }

  protected async ready(): Promise<boolean> {
    if (!(await tcpOpen(this.port))) return false;
    const knex = createDatabase(this.url, { poolMax: 1, connectTimeoutMs: 1000 });
    try {
      await knex.raw('select 1');
      return true;
    } finally {
      await knex.destroy();
    }
  }

  protected logFiles(): string[] {
    return [join(this.dir, 'error.log')];
  }
}

/** mariadbd and mariadb-install-db refuse to run as root unless told to. */
function asRoot(): string[] {
  return process.getuid?.() === 0 ? ['--user=root'] : [];
}
