import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext } from 'playwright-core';
import type * as PlaywrightModule from 'playwright-core';

/** Debian's Chromium (CI installs it); `CHROMIUM_PATH` overrides. */
export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** The flags the browser tests run Chromium with (a fresh `--user-data-dir` is added per launch). */
export const chromiumArgs = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
] as const;

type PlaywrightCore = typeof PlaywrightModule;

async function loadPlaywright(): Promise<PlaywrightCore | string> {
  try {
    return await import('playwright-core');
  } catch (err) {
    return `playwright-core cannot be loaded (${err instanceof Error ? err.message : String(err)}): npm install -D playwright-core`;
  }
}

/**
 * Call in a `before` hook of a browser suite: returns playwright-core when it and Chromium are present. Otherwise,
 * like `requireService`, it **fails** in CI (`CI=true`) and skips the suite with one loud line elsewhere.
 */
export async function requireBrowser(ctx: Mocha.Context): Promise<PlaywrightCore> {
  const playwright = await loadPlaywright();
  let problem: string | undefined;
  if (typeof playwright === 'string') problem = playwright;
  else if (!existsSync(chromiumPath)) {
    problem = `Chromium is not installed at ${chromiumPath} (apt-get install chromium, or set CHROMIUM_PATH)`;
  }
  if (problem === undefined && typeof playwright !== 'string') return playwright;
  if (process.env.CI === 'true') throw new Error(`${problem} (required in CI)`);
  console.warn(`  SKIPPING: ${problem}`);
  ctx.skip();
}

/** A headless Chromium with a fresh profile; `close()` closes it and deletes the profile. */
export interface TestBrowser {
  readonly context: BrowserContext;
  close(): Promise<void>;
}

/** Launches Debian's Chromium through playwright-core (no browser download) with {@link chromiumArgs}. */
export async function launchChromium(playwright: PlaywrightCore): Promise<TestBrowser> {
  const userDataDir = mkdtempSync(join(tmpdir(), 'matssocket-chromium-'));
  try {
    // launchPersistentContext is how playwright takes a --user-data-dir of our choosing.
    const context = await playwright.chromium.launchPersistentContext(userDataDir, {
      executablePath: chromiumPath,
      headless: true,
      args: [...chromiumArgs],
    });
    return {
      context,
      async close() {
        await context.close();
        rmSync(userDataDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    rmSync(userDataDir, { recursive: true, force: true });
    throw err;
  }
}
