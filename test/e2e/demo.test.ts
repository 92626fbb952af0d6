import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { launchChromium, requireBrowser, type TestBrowser } from '../helpers/browser.ts';
import { ChildProgram, repoRoot } from '../helpers/childProgram.ts';

/** The URLs the `npm start` node logs in its "ready" line (pino JSON on stdout). */
interface ReadyLine {
  demo: string;
  admin: string;
  health: string;
}

describe('demo page in Chromium (npm start, in-process broker, SQLite file)', function () {
  this.timeout(90_000);
  let program: ChildProgram | undefined;
  let browser: TestBrowser | undefined;
  let dataDir: string | undefined;
  let urls: ReadyLine | undefined;
  let page: Page | undefined;

  before(async function () {
    this.timeout(120_000);
    const playwright = await requireBrowser(this);
    dataDir = mkdtempSync(join(tmpdir(), 'matssocket-demo-'));
    program = ChildProgram.npmRun('start', {
      PORT: '0',
      MATSSOCKET_DB_URL: `sqlite:${join(dataDir, 'demo.sqlite')}`,
      DEMO_TICKER_INTERVAL_MS: '300',
      LOG_LEVEL: 'info',
    });
    const line = await program.waitForLine(/"msg":"MatsSocket node ready"/, 60_000);
    urls = JSON.parse(line) as ReadyLine;
    browser = await launchChromium(playwright);
    page = browser.context.pages()[0] ?? (await browser.context.newPage());
  });

  after(async function () {
    this.timeout(30_000);
    await browser?.close();
    if (program) {
      program.signal('SIGTERM');
      await program.waitForExit(15_000).catch(() => program?.kill());
      await program.kill();
    }
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  const p = (): Page => {
    if (!page) throw new Error('no page');
    return page;
  };

  it('connects, completes a request, receives pushes and topic publications', async () => {
    await p().goto(urls!.demo);
    expect(await p().title()).to.equal('MatsSocket demo');
    await p().fill('#user', 'e2e-user');
    await p().click('#connect');
    await p().locator('#state', { hasText: 'SESSION_ESTABLISHED' }).waitFor({ timeout: 10_000 });
    await p().fill('#echoText', 'hello from chromium');
    await p().click('#echo');
    await p().locator('#echoResult', { hasText: 'HELLO FROM CHROMIUM' }).waitFor({ timeout: 10_000 });
    await p().click('#push');
    await p().locator('#pushes li', { hasText: 'Server push 3 of 3' }).waitFor({ timeout: 10_000 });
    await p().locator('#ticker', { hasText: 'tick' }).waitFor({ timeout: 10_000 });
    await p().fill('#chatText', 'chat from the e2e test');
    await p().click('#chat');
    await p()
      .locator('#chatMessages li', { hasText: 'e2e-user: chat from the e2e test' })
      .waitFor({ timeout: 10_000 });
  });

  it('drops the connection while a slow request is pending; the reply arrives after the automatic reconnect', async () => {
    await p().fill('#slowDelay', '1500');
    await p().click('#slow');
    await p().locator('#slowStatus', { hasText: 'pending' }).waitFor({ timeout: 5000 });
    await p().click('#drop');
    await p().locator('#log li', { hasText: 'LOST_CONNECTION (close 4002' }).waitFor({ timeout: 5000 });
    await p().locator('#log li', { hasText: 'SESSION_ESTABLISHED (resumed)' }).waitFor({ timeout: 10_000 });
    await p()
      .locator('#slowStatus', { hasText: 'reply received after the reconnect' })
      .waitFor({ timeout: 15_000 });
    expect(await p().textContent('#slowResult')).to.contain('"waitedMs": 1500');
    expect(await p().textContent('#state')).to.equal('SESSION_ESTABLISHED');
    // Exactly once: one reply line in the log.
    expect(await p().locator('#log li', { hasText: 'slow reply received' }).count()).to.equal(1);
    mkdirSync(join(repoRoot, 'test-output'), { recursive: true });
    const screenshot = join(repoRoot, 'test-output', 'demo.png');
    await p().screenshot({ path: screenshot, fullPage: true });
    expect(statSync(screenshot).size).to.be.greaterThan(1000);
  });

  it('admin page: shows the session, and a dead letter that can be re-queued and purged', async () => {
    await p().click('#poison');
    await p().locator('#log li', { hasText: 'Demo.poison acknowledged' }).waitFor({ timeout: 5000 });
    // The admin API needs the token the node generated and printed in the admin URL's fragment.
    const apiUrl = new URL('/api/overview', urls!.admin).href;
    expect((await fetch(apiUrl)).status).to.equal(401);
    expect(urls!.admin).to.match(/\/admin#token=[\w-]{40,}$/);
    const admin = await browser!.context.newPage();
    try {
      const bare = new URL('/admin', urls!.admin).href;
      await admin.goto(bare);
      await admin.locator('#login').waitFor({ state: 'visible', timeout: 10_000 });
      await admin.goto(urls!.admin);
      await admin.locator('#sessions tr', { hasText: 'e2e-user' }).waitFor({ timeout: 10_000 });
      // Stored by the page and taken out of the address bar.
      expect(admin.url()).to.equal(bare);
      await admin.locator('#login').waitFor({ state: 'hidden', timeout: 10_000 });
      const row = admin.locator('#deadLetters tr', { hasText: 'client_nack' });
      await row.first().waitFor({ timeout: 10_000 });
      await row.first().click();
      await admin.locator('#deadLetterDetail').waitFor({ state: 'visible', timeout: 10_000 });
      await admin.click('#dlRequeue');
      await admin.locator('#status', { hasText: 're-queued' }).waitFor({ timeout: 10_000 });
      // Re-delivered, NACKed again by the page (no such terminator), so dead-lettered again.
      await admin.locator('#deadLetters tr', { hasText: 'client_nack' }).first().waitFor({ timeout: 10_000 });
      // Purging all asks for a second click.
      await admin.click('#purgeAll');
      await admin.locator('#purgeAll', { hasText: 'Confirm?' }).click();
      await admin.locator('#status', { hasText: 'purged' }).waitFor({ timeout: 10_000 });
      await admin.locator('#deadLetterTotal', { hasText: '(0)' }).waitFor({ timeout: 10_000 });
    } finally {
      await admin.close();
    }
    const health = (await (await fetch(urls!.health)).json()) as { status: string };
    expect(health.status).to.equal('UP');
  });

  it('SIGTERM stops the node gracefully: the page sees close 1012, the node logs its clean stop', async () => {
    program!.signal('SIGTERM');
    await p().locator('#log li', { hasText: 'LOST_CONNECTION (close 1012' }).waitFor({ timeout: 10_000 });
    await program!.waitForExit(15_000);
    const messages = program!.stdout.flatMap((l) => {
      try {
        return [(JSON.parse(l) as { msg?: string }).msg ?? ''];
      } catch {
        return [];
      }
    });
    expect(messages).to.include('all nodes stopped');
    expect(messages).to.include('stopped');
    expect(messages.some((m) => m.includes('forcing exit'))).to.equal(false);
  });
});
