import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { ensureBrowserBundle, BUNDLE_FILE } from '../../src/cli/demo/browserBundle.ts';
import { packageRoot } from '../../src/cli/demo/packageRoot.ts';
import { chainHttpHandlers, requestPath, type HttpHandler } from '../../src/ops/httpHandler.ts';
import { createOpsHandler } from '../../src/ops/opsHandler.ts';
import { silentLogger } from '../../src/logging.ts';
import type { SessionRemovedEvent } from '../../src/server/ServerEvents.ts';
import { createTestDatabase, type TestDatabase } from '../../harness/databases.ts';
import { testAuth } from '../../harness/startTestCluster.ts';
import { launchChromium, requireBrowser, type TestBrowser } from '../helpers/browser.ts';
import { eventually } from '../helpers/clientKit.ts';
import { NOOP_TERMINATOR, startOpsTestNode, type OpsTestNode } from '../integration/ops/opsKit.ts';

/** A page that starts a session with the browser bundle's client and says so in its title. */
function pageHtml(webSocketUrl: string): string {
  return `<!doctype html><html><head><title>starting</title></head><body>
<script src="/${BUNDLE_FILE}"></script>
<script>
  const client = new MatsSocket.MatsSocketClient({ appName: 'UnloadTest', appVersion: '1', urls: [${JSON.stringify(webSocketUrl)}] });
  client.setCurrentAuthorization(${JSON.stringify(testAuth('unloading'))});
  client.send(${JSON.stringify(NOOP_TERMINATOR)}, 'unload-1', {}).then(() => {
    window.sessionIdForTest = client.sessionId;
    document.title = 'ready';
  });
</script></body></html>`;
}

describe('page unload in Chromium: the client closes its session (beforeunload/pagehide)', function () {
  this.timeout(60_000);
  let browser: TestBrowser | undefined;
  let db: TestDatabase | undefined;
  let node: OpsTestNode | undefined;
  let page: Page | undefined;
  const closeSessionCalls: string[] = [];

  before(async function () {
    this.timeout(120_000);
    const playwright = await requireBrowser(this);
    const bundle = readFileSync(join(await ensureBrowserBundle(packageRoot(), silentLogger), BUNDLE_FILE));
    db = await createTestDatabase('sqlite');
    let webSocketUrl = '';
    const pages: HttpHandler = (request, response) => {
      const path = requestPath(request);
      if (path === '/page.html')
        response.writeHead(200, { 'content-type': 'text/html' }).end(pageHtml(webSocketUrl));
      else if (path === `/${BUNDLE_FILE}`)
        response.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle);
      else return false;
      return true;
    };
    const recordCloseSession: HttpHandler = (request) => {
      if (requestPath(request).endsWith('/close_session')) closeSessionCalls.push(request.url ?? '');
      return false;
    };
    node = await startOpsTestNode(db.knex, ({ server, store, transport }) =>
      chainHttpHandlers([recordCloseSession, createOpsHandler({ server, store, transport }), pages]),
    );
    webSocketUrl = node.webSocketUrl;
    browser = await launchChromium(playwright);
    page = await browser.context.newPage();
  });

  after(async function () {
    this.timeout(30_000);
    await browser?.close();
    await node?.stop();
    await db?.drop();
  });

  it('closing the page closes the session with 4000 and the out-of-band close_session; it is gone from getSessions', async () => {
    const server = node!.server;
    const removed: SessionRemovedEvent[] = [];
    const off = server.on('sessionRemoved', (e) => removed.push(e));
    try {
      await page!.goto(`${node!.httpUrl}/page.html`);
      await page!.waitForFunction('document.title === "ready"', undefined, { timeout: 10_000 });
      const sid = await page!.evaluate<string>('window.sessionIdForTest');
      expect((await server.getSessions()).map((s) => s.id)).to.include(sid);

      await page!.close({ runBeforeUnload: true });
      const event = await eventually(() => removed.find((e) => e.sessionId === sid), {
        timeoutMs: 10_000,
        what: 'the session removed',
      });
      expect(event).to.include({ type: 'CLOSE', closeCode: 4000 });
      // The page sends its close frame, then the beacon: two TCP connections, and the server can take the beacon
      // first (the WebSocket's close completes only when its TCP connection does), then closing it itself.
      expect(event.reason).to.be.oneOf([
        'From client: page unloaded',
        'Server Side: Out-of-band close_session',
      ]);
      await eventually(() => closeSessionCalls.some((u) => u.includes(`session_id=${sid}`)), {
        timeoutMs: 10_000,
        what: 'the close_session beacon',
      });
      expect((await server.getSessions()).map((s) => s.id)).to.not.include(sid);
    } finally {
      off();
    }
  });
});
