import { expect } from 'chai';
import { build } from 'esbuild';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exec, packAndInstall, typeCheck, type Consumer } from './packageHarness.ts';

/**
 * The package as a user gets it (`npm run test:package`): packed with `npm pack`, installed into a scratch project,
 * imported in Node, bundled for the browser, type-checked with `skipLibCheck: false` and running the README's
 * quickstart. Everything happens in one temp folder, removed at the end.
 */
describe('the npm package, consumed as a user does', function () {
  this.timeout(60_000);
  let consumer: Consumer | undefined;

  before(async function () {
    this.timeout(300_000);
    consumer = await packAndInstall();
  });

  after(() => {
    if (consumer) rmSync(consumer.tmp, { recursive: true, force: true });
  });

  const installed = (): Consumer => {
    if (!consumer) throw new Error('the package was not installed');
    return consumer;
  };

  it('ships the built entries, their declarations and the migrations, and no sources, tests or benchmarks', () => {
    const paths = installed().pack.files.map((f) => f.path);
    for (const file of [
      'dist/src/index.js',
      'dist/src/index.d.ts',
      'dist/src/client/index.js',
      'dist/src/client/index.d.ts',
      'dist/browser/matssocket.js',
      'dist/browser/matssocket.d.ts',
      'dist/browser/matssocket.iife.js',
      'dist/migrations/index.js',
      'package.json',
    ]) {
      expect(paths, file).to.include(file);
    }
    const strays = paths.filter(
      (p) =>
        !/^dist\/(src|migrations|browser)\//.test(p) && !['package.json', 'README.md', 'LICENSE'].includes(p),
    );
    expect(strays).to.deep.equal([]);
    expect(paths.filter((p) => p.endsWith('.ts') && !p.endsWith('.d.ts'))).to.deep.equal([]);
    expect(paths.filter((p) => p.startsWith('dist/src/cli/demo/'))).to.deep.equal([]);
  });

  it('imports all three entries in Node', async () => {
    const script = [
      "const server = await import('matssocket-ts');",
      "const client = await import('matssocket-ts/client');",
      "const browser = await import('matssocket-ts/client/browser');",
      'console.log(JSON.stringify([server, client, browser].map((m) => Object.keys(m))));',
    ].join('\n');
    const { stdout } = await exec(process.execPath, ['--input-type=module', '-e', script], installed().dir);
    const [server, client, browser] = JSON.parse(stdout) as string[][];
    expect(server).to.include.members(['MatsSocketServer', 'MatsFactory', 'SqlClusterStore', 'NodeAssembly']);
    expect(client).to.include.members(['MatsSocketClient', 'CloseCode', 'ErrorCode']);
    expect(client).to.not.include('MatsSocketServer');
    expect(browser).to.deep.equal(client);
  });

  it('runs the matssocket-ts command from the installed package: check reports a config file by line', async () => {
    const dir = installed().dir;
    const bin = join(dir, 'node_modules', '.bin', 'matssocket-ts');
    writeFileSync(
      join(dir, 'good.yaml'),
      [
        'nodeName: pkg-1',
        'broker: { url: memory }',
        "database: { url: 'sqlite::memory:' }",
        'auth: { type: insecure-dev }',
      ].join('\n'),
    );
    await exec(bin, ['check', '--config', 'good.yaml'], dir);
    writeFileSync(join(dir, 'bad.yaml'), 'nodeName: pkg-1\nbroker: { url: memory }\nauth: { type: nope }\n');
    const failed = await exec(bin, ['check', '--config', 'bad.yaml'], dir).then(
      () => undefined,
      (err: unknown) => err as Error,
    );
    expect(failed, 'check fails on a bad file').to.be.an('error');
    expect(failed!.message).to.match(/bad\.yaml:3: auth\.type/);
  });

  it('bundles the client entries for the browser with no Node built-in and nothing of the server', async () => {
    const dir = installed().dir;
    const result = await build({
      absWorkingDir: dir,
      entryPoints: ['browserConsumer.ts'],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs).to.include('node_modules/matssocket-ts/dist/src/client/MatsSocketClient.js');
    const outside = inputs.filter(
      (i) =>
        i !== 'browserConsumer.ts' &&
        !/^node_modules\/matssocket-ts\/dist\/(browser\/|src\/(client|protocol)\/|src\/(errors|logging)\.js|src\/util\/(backoff|deferred)\.js)/.test(
          i,
        ),
    );
    expect(outside).to.deep.equal([]);
    const text = result.outputFiles[0]!.text;
    expect(text).to.not.match(/["']node:|\brequire\(/);
  });

  it('type-checks a browser consumer of the client entries with the DOM library and no Node types', async () => {
    await typeCheck(installed(), 'browser', ['browserConsumer.ts'], {
      lib: ['es2022', 'dom'],
      types: [],
      noEmit: true,
    });
  });

  it("type-checks a Node consumer of both entries and the README's quickstart, and runs the quickstart", async () => {
    const dir = installed().dir;
    await typeCheck(installed(), 'node', ['serverConsumer.ts', 'quickstart.ts'], {
      lib: ['es2022'],
      types: ['node'],
      outDir: 'out',
    });
    writeFileSync(join(dir, 'out', 'package.json'), '{"type":"module"}');
    const { stdout } = await exec(process.execPath, [join('out', 'quickstart.js')], dir, 60_000);
    expect(stdout).to.contain("reply: { ok: true } - rows: [ { item: 'book', trace: 'quickstart-1' } ]");
  });
});
