import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import type { MatsSocketClient } from '../../src/client/MatsSocketClient.ts';
import { dummyAuthValue } from '../../src/cli/compat/DummyAuth.ts';
import { DemoIds } from '../../src/cli/demo/demoEndpoints.ts';
import { startDemoNode, type DemoNode } from '../../src/cli/demo/startDemoNode.ts';
import { readMainNodeConfig } from '../../src/cli/nodeConfig.ts';
import { silentLogger } from '../../src/logging.ts';
import { randomId } from '../../src/util/ids.ts';
import { launchChromium, requireBrowser, type TestBrowser } from '../helpers/browser.ts';
import { repoRoot } from '../helpers/childProgram.ts';
import { ClientPool, eventually } from '../helpers/clientKit.ts';

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const OUTPUT = join(repoRoot, 'test-output');
const ISO = /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/;
/**
 * Page-side expressions as strings: the tests are type-checked without the DOM library. `page.evaluate` runs them
 * through the DevTools protocol; `waitForFunction` would `eval` them in the page, which the page's CSP forbids.
 */
const LINE_PATH = `(document.querySelector('#chartMessages path.line')?.getAttribute('d') ?? '')`;
/** A legend value above zero ("0.4", "12", "1.2k"; not "0" nor "-"). */
const POSITIVE = /[1-9]/;

/**
 * The admin page (src/ops/admin) in Chromium against the `npm start` node (in-process broker, SQLite file), at
 * desktop and phone width; screenshots go to test-output/admin-*.png.
 */
describe('admin page in Chromium (demo node, in-process broker + SQLite file)', function () {
  this.timeout(60_000);
  const pool = new ClientPool();
  let demo: DemoNode | undefined;
  let dir: string | undefined;
  let browser: TestBrowser | undefined;
  let page: Page | undefined;
  const tag = randomId(6);
  const node = (): DemoNode => demo!;
  const p = (): Page => page!;
  const adminUrl = (): string => `${node().node.httpUrl}/admin`;

  async function screenshot(target: Page, name: string): Promise<void> {
    mkdirSync(OUTPUT, { recursive: true });
    const path = join(OUTPUT, `admin-${name}.png`);
    await target.screenshot({ path, fullPage: true });
    expect(statSync(path).size).to.be.greaterThan(5000);
  }

  /** A connected client of `user` whose session is established (one request answered). */
  async function connect(user: string): Promise<MatsSocketClient> {
    const client = pool.create(node().urls.webSocket, dummyAuthValue(user));
    await client.request(DemoIds.echo, 'hello', { text: 'hi' });
    return client;
  }

  before(async function () {
    this.timeout(120_000);
    const playwright = await requireBrowser(this);
    dir = mkdtempSync(join(tmpdir(), 'matssocket-admin-'));
    demo = await startDemoNode(
      readMainNodeConfig({
        PORT: '0',
        DEMO_TICKER_INTERVAL_MS: '1000',
        MATSSOCKET_DB_URL: `sqlite:${join(dir, 'admin.sqlite')}`,
      }),
      // The outbox-depth gauge refreshes at 0.5 s instead of 30 s, so its chart has something to show.
      { logger: silentLogger, stopGraceMs: 300, server: { jobs: { outboxDepthIntervalMs: 500 } } },
    );
    browser = await launchChromium(playwright);
    page = await browser.context.newPage();
    await page.setViewportSize(DESKTOP);
  });

  after(async function () {
    this.timeout(30_000);
    await browser?.close();
    await pool.closeAll();
    await demo?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('asks for the admin token, refuses a wrong one, keeps the right one in this tab only', async () => {
    await p().goto(adminUrl());
    await p().locator('#login').waitFor({ state: 'visible' });
    expect(await p().locator('#app').isHidden()).to.equal(true);
    // A token an earlier version of the page left in localStorage is neither used nor kept.
    await p().evaluate(
      `localStorage.setItem('matssocket-admin-token', ${JSON.stringify(node().adminToken)})`,
    );
    await p().reload();
    await p().locator('#login').waitFor({ state: 'visible' });
    await screenshot(p(), 'login-desktop');
    await p().fill('#token', 'this-is-not-the-admin-token');
    await p().click('#loginForm button[type=submit]');
    await p().locator('#loginError', { hasText: 'not accepted' }).waitFor();
    await p().fill('#token', node().adminToken);
    await p().click('#loginForm button[type=submit]');
    await p().locator('#app').waitFor({ state: 'visible' });
    expect(await p().textContent('#node')).to.equal(node().node.nodeName);
    const stored = await p().evaluate('[sessionStorage.length, localStorage.length]');
    expect(stored).to.deep.equal([1, 0]);
  });

  it('lists the cluster nodes: this node alive, with the sessions it holds', async () => {
    await connect(`node-${tag}-a`);
    await connect(`node-${tag}-b`);
    const row = p().locator('#nodes tr', { hasText: node().node.nodeName });
    await row.locator('td[data-label="Sessions"]', { hasText: /^2$/ }).waitFor();
    expect(await row.textContent())
      .to.contain('alive')
      .and.contain('this node')
      .and.contain('s ago');
    expect(await p().textContent('#nodesHint')).to.contain('2 sessions live here');
  });

  it('charts messages, round trips, outbox depth and dead letters, moving as traffic flows', async () => {
    const linePath = (): Promise<string> => p().evaluate(LINE_PATH);
    const client = await connect(`chart-${tag}`);
    let flowing = true;
    const traffic = (async () => {
      for (let i = 0; flowing; i++) {
        await Promise.all([1, 2, 3].map((k) => client.request(DemoIds.echo, `t${i}.${k}`, { text: 'x' })));
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    try {
      await p().locator('#chartMessages [data-now="0"]', { hasText: POSITIVE }).waitFor();
      const before = await linePath();
      await eventually(async () => (await linePath()) !== before, {
        what: 'the messages chart drawn anew with the next samples',
        timeoutMs: 10_000,
      });
      await p().locator('#chartLatency [data-now="0"]', { hasText: POSITIVE }).waitFor();
      await client.send(DemoIds.poison, 'poison-chart', {});
      await p().locator('#chartDead rect').first().waitFor();
      await p().locator('#chartDead [data-now="0"]', { hasText: POSITIVE }).waitFor();
      await p().locator('#chartOutbox path.line').first().waitFor();
    } finally {
      flowing = false;
      await traffic;
    }
    expect(await p().locator('#chartMessages path.line').count()).to.equal(2);
    // The window picker redraws the same samples over another span (the node is young: 1 min shows them best).
    const wide = await linePath();
    await p().click('#windowPicker button[data-window="60000"]');
    expect(await linePath()).to.not.equal(wide);
    await screenshot(p(), 'desktop');
  });

  it('searches sessions by user id or session id prefix, and pages through them', async () => {
    const clients: MatsSocketClient[] = [];
    for (let i = 0; i < 27; i++) clients.push(await connect(`page-${tag}-${String(i).padStart(2, '0')}`));
    const label = p().locator('#sessionPager [data-page="label"]');
    await p().fill('#sessionSearch', `page-${tag}`);
    await label.filter({ hasText: '1–25 of 27' }).waitFor();
    expect(await p().locator('#sessions tr').count()).to.equal(25);
    await p().click('#sessionPager [data-page="next"]');
    await label.filter({ hasText: '26–27 of 27' }).waitFor();
    expect(await p().locator('#sessions tr').count()).to.equal(2);
    expect(await p().isDisabled('#sessionPager [data-page="next"]')).to.equal(true);
    await p().click('#sessionPager [data-page="prev"]');
    await label.filter({ hasText: '1–25 of 27' }).waitFor();
    const sid = clients[3]!.sessionId!;
    await p().fill('#sessionSearch', sid.slice(0, 10));
    await label.filter({ hasText: '1–1 of 1' }).waitFor();
    expect(await p().textContent('#sessions'))
      .to.contain(sid)
      .and.contain(`page-${tag}-03`);
    await p().fill('#sessionSearch', `nobody-${tag}`);
    await p()
      .locator('#sessions', { hasText: `No session or user id starts with "nobody-${tag}"` })
      .waitFor();
    await p().fill('#sessionSearch', `page-${tag}-0`);
    await label.filter({ hasText: '1–10 of 10' }).waitFor();
  });

  it('shows a dead letter readably: ISO times, its delivery, the envelope and message pretty-printed', async () => {
    const row = p().locator('#deadLetters tr', { hasText: 'client_nack' }).first();
    await row.waitFor();
    expect(await row.locator('td[data-label="Deliveries"]').textContent()).to.equal('1');
    await row.click();
    const detail = p().locator('#deadLetterDetail');
    await detail.waitFor({ state: 'visible' });
    const field = async (name: string): Promise<string> =>
      (await p().locator(`#dlFields dt:text-is("${name}") + dd`).textContent()) ?? '';
    expect(await field('Deliveries')).to.equal('1');
    expect(await field('Reason')).to.contain('NACKed by the client');
    expect(await field('Stored')).to.match(ISO);
    expect(await field('Last attempt')).to.match(ISO);
    expect(await field('Dead-lettered'))
      .to.match(ISO)
      .and.contain(node().node.nodeName);
    expect(await field('Description')).to.not.equal('-');
    const envelope = (await p().textContent('#dlEnvelope')) ?? '';
    expect(envelope).to.contain(`"eid": "${DemoIds.poisonTerminator}"`);
    expect(envelope.split('\n').length).to.be.greaterThan(3);
    expect(await p().locator('#dlEnvelope span.k').count()).to.be.greaterThan(2);
    expect(await p().textContent('#dlMessage')).to.contain('"text": "Nobody on the client listens');
    // Epoch milliseconds in the envelope and message come with their ISO time.
    expect(await p().locator('#dlMessage span.c').textContent()).to.match(ISO);
    await screenshot(p(), 'deadletter-desktop');
    await p().click('#dlRequeue');
    await p().locator('#status', { hasText: 're-queued' }).waitFor();
    await detail.waitFor({ state: 'hidden' });
  });

  it('fits a phone-width screen: one column, tables as cards, no sideways scrolling', async () => {
    const phone = await browser!.context.newPage();
    try {
      await phone.setViewportSize(PHONE);
      await phone.goto(adminUrl());
      await phone.locator('#login').waitFor({ state: 'visible' });
      await screenshot(phone, 'login-phone');
      // The URL the node prints carries the token in the fragment: stored, then taken out of the address bar.
      await phone.goto(`${adminUrl()}#token=${encodeURIComponent(node().adminToken)}`);
      await phone.locator('#app').waitFor({ state: 'visible' });
      expect(phone.url()).to.equal(adminUrl());
      await phone.locator('#chartMessages path.line').first().waitFor();
      await phone.locator('#deadLetters tr.clickable').first().waitFor();
      const widths = await phone.evaluate<{ page: number; view: number; chart: number; header: string }>(`({
        page: document.documentElement.scrollWidth,
        view: window.innerWidth,
        chart: document.querySelector('#chartMessages').getBoundingClientRect().width,
        header: getComputedStyle(document.querySelector('#sessions').closest('table').tHead).display,
      })`);
      expect(widths.page).to.be.at.most(widths.view);
      expect(widths.chart).to.be.greaterThan(PHONE.width * 0.85);
      expect(widths.header).to.equal('none');
      await phone.fill('#sessionSearch', `node-${tag}`);
      await phone.locator('#sessionPager [data-page="label"]', { hasText: 'of 2' }).waitFor();
      await screenshot(phone, 'phone');
      await phone.locator('#deadLetters tr.clickable').first().click();
      await phone.locator('#deadLetterDetail').waitFor({ state: 'visible' });
      expect(await phone.evaluate<number>('document.documentElement.scrollWidth')).to.be.at.most(PHONE.width);
      await phone
        .locator('#deadLetterDetail')
        .screenshot({ path: join(OUTPUT, 'admin-deadletter-phone.png') });
    } finally {
      await phone.close();
    }
  });
});
