import { expect } from 'chai';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import vm from 'node:vm';
import { WebSocket } from 'ws';
import { buildBrowserBundles, type BrowserBuildResult } from '../../../scripts/buildBrowser.ts';
import type { MatsSocketClient as ClientClass } from '../../../src/client/MatsSocketClient.ts';
import { FakeServer } from '../../helpers/fakeServer.ts';

const allowedOutsideClientAndProtocol = [
  'src/errors.ts',
  'src/logging.ts',
  'src/util/backoff.ts',
  'src/util/deferred.ts',
];

/** Import specifiers of a source or bundle text: static, dynamic and require(). */
function specifiers(text: string): string[] {
  const found: string[] = [];
  const patterns = [
    /^\s*(?:import|export)\b[^;]*?\bfrom\s*["']([^"']+)["']/gm,
    /^\s*import\s*["']([^"']+)["']/gm,
    /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g,
    /\brequire\s*\(\s*["']([^"']+)["']\s*\)/g,
  ];
  for (const re of patterns) {
    for (const match of text.matchAll(re)) found.push(match[1]!);
  }
  return found;
}

describe('browser bundle (scripts/buildBrowser.ts)', function () {
  this.timeout(20_000);
  let outDir: string;
  let result: BrowserBuildResult;

  before(async () => {
    outDir = mkdtempSync(join(tmpdir(), 'matssocket-browser-'));
    result = await buildBrowserBundles(outDir);
  });

  after(() => {
    rmSync(outDir, { recursive: true, force: true });
  });

  it('bundles only browser-safe sources: src/client, src/protocol and the shared browser-safe modules', () => {
    expect(result.inputs).to.include('src/client/MatsSocketClient.ts');
    for (const input of result.inputs) {
      const ok =
        input.startsWith('src/client/') ||
        input.startsWith('src/protocol/') ||
        allowedOutsideClientAndProtocol.includes(input);
      expect(ok, `unexpected bundle input ${input}`).to.equal(true);
    }
  });

  it('contains no imports at all, so no Node built-ins', () => {
    for (const file of [result.esm, result.iife]) {
      const text = readFileSync(file, 'utf8');
      expect(specifiers(text), file).to.deep.equal([]);
      expect(text).to.not.match(/["']node:/);
    }
  });

  it('the client and protocol sources import no Node built-ins or packages', () => {
    // Not vacuous: the multi-line import of ClientSession.ts is found.
    expect(specifiers(readFileSync('src/client/ClientSession.ts', 'utf8'))).to.include(
      '../protocol/closeCodes.ts',
    );
    for (const dir of ['src/client', 'src/protocol']) {
      for (const name of readdirSync(dir)) {
        const imports = specifiers(readFileSync(join(dir, name), 'utf8'));
        const external = imports.filter((s) => !s.startsWith('.'));
        expect(external, `${dir}/${name}`).to.deep.equal([]);
      }
    }
  });

  it('the IIFE bundle sets globalThis.MatsSocket in a bare JavaScript context', () => {
    const context: Record<string, unknown> = {};
    vm.runInNewContext(readFileSync(result.iife, 'utf8'), context);
    const api = context.MatsSocket as Record<string, unknown>;
    expect(api.MatsSocketClient).to.be.a('function');
    expect(api.CloseCode).to.have.property('CLOSE_SESSION', 4000);
    expect(api.ErrorCode).to.have.property('CLIENT_SESSION_CLOSED');
  });

  it('the ESM bundle works end to end against a server', async () => {
    writeFileSync(join(outDir, 'package.json'), '{"type":"module"}');
    const api = (await import(pathToFileURL(result.esm).href)) as { MatsSocketClient: typeof ClientClass };
    const server = await FakeServer.start();
    const client = new api.MatsSocketClient({
      appName: 'BundleTest',
      appVersion: '1',
      urls: server.url,
      webSocket: WebSocket,
      initialPingDelayMinMs: 600_000,
      initialPingDelayMaxMs: 600_000,
    });
    try {
      client.setCurrentAuthorization('DummyAuth:bundle:-1');
      const reply = client.request('Test.single', 'bundle', { q: 1 });
      const connection = await server.nextConnection();
      await connection.welcome('S');
      const request = await connection.next('REQUEST');
      connection.send({ t: 'RESOLVE', cmid: request.cmid, tid: 'bundle', msg: 'from bundle' });
      expect((await reply).data).to.equal('from bundle');
    } finally {
      await client.close('done');
      await server.close();
    }
  });
});
