// The web app in Debian's Chromium, at its edges: a session that runs out while a page is open.
// Each test has its own gateway (this one needs sessions that last two seconds).
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

let browser: Browser;
const gateways: TestGateway[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no browser at ${CHROMIUM}: apt-get install chromium (.ci/run does)`);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // The machine is offline: without these Chromium keeps trying to reach Google's services.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  for (const t of gateways) await t.close();
});

const byTest = (id: string) => `[data-testid="${id}"]`;

async function gateway(config: Parameters<typeof startTestGateway>[0] = {}): Promise<TestGateway> {
  const t = await startTestGateway(config);
  gateways.push(t);
  return t;
}

async function signUp(t: TestGateway, email: string, password: string): Promise<Page> {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  await page.goto(`${t.url}/app/signup`);
  await page.fill(byTest('email'), email);
  await page.fill(byTest('password'), password);
  await page.click(byTest('submit'));
  await page.waitForURL(/\/app\/playground/);
  await page.locator(byTest('meter-credits')).waitFor();
  return page;
}

describe('web app edges in Chromium', () => {
  it('signs in again from the same tab after the session expired', async () => {
    const t = await gateway({ config: { web: { signupsPerHour: 100_000, sessionTtlHours: 2 / 3600 } } });
    const page = await signUp(t, 'expiry@example.com', 'correct horse battery');
    // Both cookies lapse (they share the session's max-age); the next call is answered 401.
    await page.waitForTimeout(3_000);
    await page.fill(byTest('prompt'), 'still there?');
    await page.click(byTest('send'));
    await page.waitForURL(/\/app\/signin/);
    await page.fill(byTest('email'), 'expiry@example.com');
    await page.fill(byTest('password'), 'correct horse battery');
    await page.click(byTest('submit'));
    await page.waitForURL(/\/app\/playground/, { timeout: 10_000 });
    await page.context().close();
  }, 60_000);
});
