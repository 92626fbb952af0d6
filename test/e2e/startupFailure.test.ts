import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';

/** A port nothing listens on: bound once by us, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Runs `npm start`'s program until it exits by itself; resolves with its exit code and output. */
function runMain(
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts'],
      { env: { ...process.env, PORT: '0', DEMO_TICKER_INTERVAL_MS: '0', ...env }, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe('npm start with a broker or database that cannot be reached', function () {
  this.timeout(60_000);

  it('a refused broker port: one line naming host, port, cause and fix, and no endpoint logs its failure', async () => {
    const port = await closedPort();
    const { code, stdout, stderr } = await runMain({
      MATSSOCKET_DB_URL: 'sqlite::memory:',
      MATSSOCKET_AMQP_URL: `amqp://guest:secret@127.0.0.1:${port}`,
    });
    expect(code).to.equal(1);
    expect(stderr.trim().split('\n')).to.have.length(1);
    expect(stderr).to.contain(`RabbitMQ at 127.0.0.1:${port}`).and.contain('ECONNREFUSED');
    expect(stderr).to.contain('MATSSOCKET_AMQP_URL').and.not.contain('secret');
    expect(stdout).to.not.match(/"level":50|endpointId/);
  });

  it('a refused database port: the same, for MATSSOCKET_DB_URL', async () => {
    const port = await closedPort();
    const { code, stdout, stderr } = await runMain({
      MATSSOCKET_DB_URL: `postgres://postgres:secret@127.0.0.1:${port}/app`,
    });
    expect(code).to.equal(1);
    expect(stderr.trim().split('\n')).to.have.length(1);
    expect(stderr).to.contain(`database server at 127.0.0.1:${port}`).and.contain('ECONNREFUSED');
    expect(stderr).to.contain('MATSSOCKET_DB_URL').and.not.contain('secret');
    expect(stdout).to.not.match(/"level":[45]0/);
  });
});
