// The web app in Debian's Chromium (playwright-core), against the real gateway and the fake
// upstream: sign up → Playground streams an answer → the 11th request to one regular model is
// refused with the message visible → a second request while one runs is refused → a key made on
// the Keys page works on /v1 with the official openai client → Usage shows both surfaces → a
// payment method makes the plan `paid`. Screenshots of each page go to artifacts/screenshots/.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatStreamFixture } from '../helpers/fake-openai.js';
import { startTestGateway, testModels, type TestGateway } from '../helpers/gateway.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const shots = join(new URL('../..', import.meta.url).pathname, 'artifacts/screenshots');

let t: TestGateway;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no browser at ${CHROMIUM}: apt-get install chromium (.ci/run does)`);
  mkdirSync(shots, { recursive: true });
  t = await startTestGateway({
    config: { models: [...testModels(), { id: 'gpt-4.1-nano', kind: 'chat', provider: 'openai', price: { input: 0.1, output: 0.4 } }] },
  });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // The machine is offline: without these Chromium keeps trying to reach Google's services.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  // The pages' Content-Security-Policy (http/routes/app-pages.ts) must block nothing the app does.
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
  });
}, 60_000);

const cspViolations: string[] = [];

afterAll(async () => {
  await browser?.close();
  await t?.close();
});

const byTest = (id: string) => `[data-testid="${id}"]`;
const shot = (name: string) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });

async function send(p: Page, model: string, prompt: string): Promise<void> {
  await p.selectOption(byTest('model-select'), model);
  await p.fill(byTest('prompt'), prompt);
  await p.click(byTest('send'));
}

describe('web app in Chromium', () => {
  it('walks the whole product', async () => {
    // Sign up.
    await page.goto(`${t.url}/app/playground`);
    await page.waitForURL(/\/app\/signin/);
    await shot('signin');
    await page.click(byTest('switch-to-signup'));
    await page.fill(byTest('email'), 'browser@example.com');
    await page.fill(byTest('password'), 'correct horse battery');
    await page.click(byTest('submit'));
    await page.waitForURL(/\/app\/playground/);

    // The Playground streams an answer.
    await send(page, 'gpt-4o-mini', 'Say hello');
    await expect.poll(() => page.textContent(byTest('answer')), { timeout: 10_000 }).toContain('Hello from the fake upstream.');
    await expect.poll(() => page.textContent(byTest('meter-requests'))).toMatch(/9\b/);
    await shot('playground');

    // Nine more are fine; the 11th to the same regular model is refused, the message shown.
    for (let i = 2; i <= 10; i++) {
      await send(page, 'gpt-4o-mini', `hello ${i}`);
      await page.waitForSelector(byTest('busy'), { state: 'detached', timeout: 10_000 });
    }
    await send(page, 'gpt-4o-mini', 'the eleventh');
    const refusal = page.locator(byTest('error-message'));
    await refusal.waitFor({ timeout: 10_000 });
    expect(await refusal.textContent()).toMatch(/10 requests per day/);
    expect(await refusal.locator('a[href$="/app/billing"]').count()).toBeGreaterThan(0);
    await shot('playground-refused');

    // One at a time: while a stream runs in this tab, a request from a second tab is refused.
    let release!: () => void;
    t.openai.enqueue({ kind: 'sse', events: chatStreamFixture, holdBeforeIndex: 2, release: new Promise<void>((r) => (release = r)) });
    await send(page, 'gpt-4.1-nano', 'a slow one');
    await page.waitForSelector(byTest('busy'));
    const second = await page.context().newPage();
    await second.goto(`${t.url}/app/playground`);
    await send(second, 'gpt-4.1-nano', 'meanwhile');
    const busyRefusal = second.locator(byTest('error-message'));
    await busyRefusal.waitFor({ timeout: 10_000 });
    expect(await busyRefusal.textContent()).toMatch(/at a time/);
    await second.close();
    release();
    await page.waitForSelector(byTest('busy'), { state: 'detached', timeout: 10_000 });

    // Stop: the server settles the stream once it has drained the upstream for its usage, after
    // the browser has stopped reading; the meter catches up by itself, without a reload.
    const session = await page.evaluate(() => fetch('/app/api/session').then((r) => r.json()));
    const ledgerRows = async () => (await t.admin('GET', `/usage?account=${session.account.id}`)).body.data.length as number;
    const rowsBefore = await ledgerRows();
    let resume!: () => void;
    t.openai.enqueue({ kind: 'sse', events: chatStreamFixture, holdBeforeIndex: 2, release: new Promise<void>((r) => (resume = r)) });
    await send(page, 'gpt-4.1-nano', 'stop me');
    await page.waitForSelector(byTest('busy'));
    await page.click(byTest('stop'));
    await page.waitForSelector(byTest('busy'), { state: 'detached', timeout: 10_000 });
    resume();
    await expect.poll(ledgerRows, { timeout: 10_000 }).toBe(rowsBefore + 1);
    const settled = await page.evaluate(() => fetch('/app/api/meter?model=gpt-4.1-nano').then((r) => r.json()));
    const shownLeft = async () => Number((/([\d,]+)\s*credits left/.exec((await page.textContent(byTest('meter-credits'))) ?? '')?.[1] ?? '').replace(/,/g, ''));
    await expect.poll(shownLeft, { timeout: 10_000 }).toBe(settled.credits.remaining);

    // Keys: create one, and it works on /v1 with the official client.
    await page.click(byTest('nav-keys'));
    await page.fill(byTest('key-name'), 'from the browser');
    await page.click(byTest('create-key'));
    const secret = (await page.locator(byTest('new-secret')).textContent())?.trim() ?? '';
    expect(secret).toMatch(/tg-[0-9A-Za-z]{43}/);
    await shot('keys');
    const answer = await t.client(secret.match(/tg-[0-9A-Za-z]{43}/)![0]).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    expect(answer.choices[0]?.message.content).toBe('Hello from the fake upstream.');

    // The key's own credit limit: set in its row, shown with what the key spent this month.
    const row = page.locator(byTest('key-row')).first();
    await row.locator(byTest('edit-limit')).click();
    await row.locator(byTest('limit-credits')).fill('5000');
    await row.locator(byTest('limit-window')).selectOption('month');
    await row.locator(byTest('save-limit')).click();
    await expect.poll(() => row.locator(byTest('key-limit')).textContent()).toMatch(/^5,000 per month · 0 used$/);
    // The form goes with the save, and the focus back to the button that opened it (not the page's
    // body, where the next Tab starts again from the top); Escape cancels an edit the same way.
    const focused = () => page.evaluate(() => document.activeElement?.getAttribute('data-testid') ?? document.activeElement?.tagName);
    await expect.poll(focused).toBe('edit-limit');
    await page.keyboard.press('Enter');
    await expect.poll(focused).toBe('limit-credits');
    await page.keyboard.type('1');
    await page.keyboard.press('Escape');
    await expect.poll(focused).toBe('edit-limit');
    await expect.poll(() => row.locator(byTest('key-limit')).textContent()).toMatch(/^5,000 per month/);
    await t.client(secret.match(/tg-[0-9A-Za-z]{43}/)![0]).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    await page.click(byTest('nav-usage'));
    await page.click(byTest('nav-keys'));
    await expect.poll(() => page.locator(byTest('key-row')).first().locator(byTest('key-limit')).textContent()).toMatch(/^5,000 per month · 12 used$/);
    await shot('keys-limit');

    // A key that expires in 30 days and may call one model: the row says both, and the API holds it to them.
    await page.fill(byTest('key-name'), 'embeddings only');
    await page.selectOption(byTest('key-expires'), '30');
    await page.click(`${byTest('key-models')} summary`);
    await page.check(`${byTest('key-model')}[value="text-embedding-3-small"]`);
    expect(await page.textContent(`${byTest('key-models')} summary`)).toBe('Only 1 model');
    await page.click(byTest('create-key'));
    const scoped = /tg-[0-9A-Za-z]{43}/.exec((await page.locator(byTest('new-secret')).textContent()) ?? '')![0];
    const newest = page.locator(byTest('key-row')).last();
    await expect.poll(() => newest.locator(byTest('key-only')).textContent()).toBe('Only text-embedding-3-small');
    expect(await newest.locator(byTest('key-status')).textContent()).toBe('Active');
    expect(await newest.locator(byTest('key-expiry')).textContent()).toMatch(/^Until /);
    expect(await page.locator(byTest('key-row')).first().locator(byTest('key-access')).textContent()).toBe('Every modelNo expiry');
    const listed = (await page.evaluate(() => fetch('/app/api/keys').then((r) => r.json()))).data.at(-1);
    expect((Date.parse(listed.expiresAt) - Date.now()) / 86_400_000).toBeGreaterThan(29.9);
    const chatErr = await t.client(scoped).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
    expect(chatErr).toMatchObject({ status: 403, code: 'model_not_allowed_for_key' });
    expect((await t.client(scoped).embeddings.create({ model: 'text-embedding-3-small', input: 'hi' })).data).toHaveLength(1);
    // The form is back to a key for every model, with no expiry.
    expect(await page.textContent(`${byTest('key-models')} summary`)).toBe('Every model');
    expect(await page.inputValue(byTest('key-expires'))).toBe('0');
    await shot('keys-scoped');
    // Once past its expiry the row says so (the operator moved it to a second from now).
    expect((await t.admin('PATCH', `/keys/${listed.id}`, { expiresAt: new Date(Date.now() + 1000).toISOString() })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1100));
    await page.click(byTest('nav-usage'));
    await page.click(byTest('nav-keys'));
    await expect.poll(() => page.locator(byTest('key-row')).last().locator(byTest('key-status')).textContent()).toBe('Expired');
    expect(await t.client(scoped).embeddings.create({ model: 'text-embedding-3-small', input: 'hi' }).catch((e: unknown) => e)).toMatchObject({ status: 401, code: 'api_key_expired' });
    expect(await newest.locator(byTest('key-expiry')).textContent()).toMatch(/^Expired /);
    // Changed in its row: seven more days, every model. The key works again, on any model.
    await newest.locator(byTest('edit-access')).click();
    await expect.poll(focused).toBe('access-expires');
    await newest.locator(byTest('access-expires')).selectOption('7');
    await newest.locator(`${byTest('key-model')}[value="text-embedding-3-small"]`).uncheck();
    await shot('keys-access-edit');
    await newest.locator(byTest('save-access')).click();
    await expect.poll(() => newest.locator(byTest('key-only')).textContent()).toBe('Every model');
    expect(await newest.locator(byTest('key-expiry')).textContent()).toMatch(/^Until /);
    await expect.poll(focused).toBe('edit-access');
    expect(await newest.locator(byTest('key-status')).textContent()).toBe('Active');
    const reopened = (await page.evaluate(() => fetch('/app/api/keys').then((r) => r.json()))).data.at(-1);
    expect((Date.parse(reopened.expiresAt) - Date.now()) / 86_400_000).toBeGreaterThan(6.9);
    expect(reopened.models).toBeNull();
    expect((await t.client(scoped).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })).choices).toHaveLength(1);
    await shot('keys-access');

    // Usage: both surfaces.
    await page.click(byTest('nav-usage'));
    await page.locator(byTest('usage-chart')).waitFor();
    await expect.poll(async () => page.locator(`${byTest('usage-row')}[data-surface="api"]`).count()).toBeGreaterThan(0);
    expect(await page.locator(`${byTest('usage-row')}[data-surface="playground"]`).count()).toBeGreaterThanOrEqual(10);
    // Each API row names the key that made it.
    const apiRow = page.locator(`${byTest('usage-row')}[data-surface="api"]`).first();
    expect(await apiRow.locator(byTest('usage-key')).textContent()).toMatch(/^· \S/);
    expect(await page.locator(`${byTest('usage-row')}[data-surface="playground"] ${byTest('usage-key')}`).count()).toBe(0);
    await shot('usage');

    // Billing: a payment method makes the plan paid.
    await page.click(byTest('nav-billing'));
    await expect.poll(() => page.textContent(byTest('plan'))).toMatch(/free/);
    // The manual provider records it at once: the page says what that ends, and asks first.
    expect(await page.textContent(byTest('lift-terms'))).toMatch(/spend\s+your credit balance \(now 0 credits\), which the operator of this gateway tops up/);
    const asked: string[] = [];
    page.once('dialog', (d) => void (asked.push(d.message()), d.dismiss()));
    await page.click(byTest('add-payment-method'));
    await expect.poll(() => asked.length).toBe(1);
    expect(asked[0]).toContain("The Free Tier's daily credits end: every request then spends your balance, now 0 credits. Only the operator of this gateway can add credits to it");
    expect((await t.admin('GET', `/accounts/${session.account.id}`)).body).toMatchObject({ plan: 'free', paymentMethod: false });
    expect(await page.textContent(byTest('plan'))).toBe('free');
    page.once('dialog', (d) => void d.accept());
    await page.click(byTest('add-payment-method'));
    await expect.poll(() => page.textContent(byTest('plan'))).toMatch(/paid/);
    // The operator tops the balance up: the page lists it.
    expect(await page.locator(byTest('top-up')).count()).toBe(0);
    await t.admin('POST', `/accounts/${session.account.id}/credits`, { amount: 1_000_000 });
    // And corrects it: a negative amount, shown as taken back.
    await t.admin('POST', `/accounts/${session.account.id}/credits`, { amount: -200_000 });
    await page.click(byTest('nav-usage'));
    await page.click(byTest('nav-billing'));
    await expect.poll(() => page.locator(byTest('top-up')).allTextContents()).toEqual([
      expect.stringMatching(/-200,000Taken back by the operator$/),
      expect.stringMatching(/\+1,000,000Added by the operator$/),
    ]);
    expect(await page.getAttribute(byTest('balance'), 'data-value')).toBe('800000');
    expect(await page.locator(byTest('top-ups-more')).count()).toBe(0);
    await shot('billing');
    // Past the 20 the page lists: Show more brings the rest, then goes.
    for (let i = 1; i <= 20; i++) await t.admin('POST', `/accounts/${session.account.id}/credits`, { amount: i });
    await page.click(byTest('nav-usage'));
    await page.click(byTest('nav-billing'));
    await expect.poll(() => page.locator(byTest('top-up')).count()).toBe(20);
    await page.click(byTest('top-ups-more'));
    await expect.poll(() => page.locator(byTest('top-up')).count()).toBe(22);
    await page.locator(byTest('top-ups-more')).waitFor({ state: 'detached' });
    expect(cspViolations).toEqual([]);
  }, 120_000);
});
