// The web app in Debian's Chromium, at its edges: a session that runs out while a page is open,
// the Playground's meter when the model is changed while a request runs, an image-to-image model,
// a page on another origin calling /v1 (CORS), where an error points at Billing, and a gateway that
// leaves accounts and keys to its operator. Each test has its own
// gateway (the first one needs sessions that last two seconds).
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatStreamFixture } from '../helpers/fake-openai.js';
import { startTestGateway, testModels, type TestGateway } from '../helpers/gateway.js';
import { ManualClock } from '../../src/lib/clock.js';

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

/** `browserTime`: what the page's clock reads (Date), where it must differ from the gateway's. */
async function signUp(t: TestGateway, email: string, password: string, browserTime?: number): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  if (browserTime !== undefined) await context.clock.setFixedTime(browserTime);
  const page = await context.newPage();
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

  it("shows the selected model's requests left after a request to another model ends", async () => {
    const t = await gateway({
      config: { models: [...testModels(), { id: 'gpt-4.1-nano', kind: 'chat', provider: 'openai', price: { input: 0.1, output: 0.4 } }] },
    });
    const page = await signUp(t, 'meter@example.com', 'correct horse battery');
    await page.selectOption(byTest('model-select'), 'gpt-4o-mini');
    for (const text of ['one', 'two']) {
      await page.fill(byTest('prompt'), text);
      await page.click(byTest('send'));
      await page.waitForSelector(byTest('busy'), { state: 'detached', timeout: 10_000 });
    }
    // A third to gpt-4o-mini runs while the user picks gpt-4.1-nano, untouched today.
    let release!: () => void;
    t.openai.enqueue({ kind: 'sse', events: chatStreamFixture, holdBeforeIndex: 2, release: new Promise<void>((r) => (release = r)) });
    await page.fill(byTest('prompt'), 'three');
    await page.click(byTest('send'));
    await page.waitForSelector(byTest('busy'));
    await page.selectOption(byTest('model-select'), 'gpt-4.1-nano');
    await expect.poll(() => page.textContent(byTest('meter-requests'))).toMatch(/^10 of 10 requests left today for gpt-4\.1-nano$/);
    release();
    await page.waitForSelector(byTest('busy'), { state: 'detached', timeout: 10_000 });
    const api = await page.evaluate(() => fetch('/app/api/meter?model=gpt-4.1-nano').then((r) => r.json()));
    expect(api.requests.remaining).toBe(10);
    // The meter read after the request must be gpt-4.1-nano's, not gpt-4o-mini's (7 left).
    await page.waitForTimeout(1_000);
    expect(await page.textContent(byTest('meter-requests'))).toBe('10 of 10 requests left today for gpt-4.1-nano');
    await page.context().close();
  }, 60_000);

  it('a page on another origin calls /v1 with a key and reads the answer and its limit headers', async () => {
    const t = await gateway();
    const { secret } = await t.newAccount();
    // Another origin: a page served by a server of its own.
    const other = createServer((_req, res) => res.setHeader('content-type', 'text/html').end('<!doctype html><title>other</title>'));
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    try {
      const page = await (await browser.newContext()).newPage();
      await page.goto(`http://127.0.0.1:${(other.address() as AddressInfo).port}/`);
      const got = await page.evaluate(
        async ({ url, key }) => {
          const res = await fetch(`${url}/v1/chat/completions`, {
            method: 'POST',
            headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'x-stainless-lang': 'js' },
            body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
          });
          return { status: res.status, object: (await res.json()).object, remaining: res.headers.get('x-ratelimit-remaining-tokens') };
        },
        { url: t.url, key: secret },
      );
      expect(got.status).toBe(200);
      expect(got.object).toBe('chat.completion');
      expect(Number(got.remaining)).toBeGreaterThan(0);
      await page.context().close();
    } finally {
      other.close();
    }
  }, 60_000);

  it('points at Billing only for refusals a plan or a top-up lifts', async () => {
    const t = await gateway();
    const page = await signUp(t, 'hint@example.com', 'correct horse battery');
    page.setDefaultTimeout(10_000);
    // A provider's failure: nothing Billing can do about it.
    t.openai.enqueue({ kind: 'json', status: 500, body: { error: { message: 'upstream broke', type: 'server_error', code: null, param: null } } });
    await page.fill(byTest('prompt'), 'hello');
    await page.click(byTest('send'));
    const box = page.locator(byTest('error-message'));
    await box.waitFor({ timeout: 10_000 });
    expect(await box.locator('a[href$="/app/billing"]').count()).toBe(0);
    // The provider's own rate limit: OpenAI's code is the one of a plan's rate rule, but no plan
    // refused it and no payment lifts it.
    t.openai.enqueue({
      kind: 'json',
      status: 429,
      headers: { 'retry-after': '20' },
      body: { error: { message: 'Rate limit reached for gpt-4o-mini on tokens per min.', type: 'tokens', code: 'rate_limit_exceeded', param: null } },
    });
    await page.fill(byTest('prompt'), 'hello again');
    await page.click(byTest('send'));
    await expect.poll(() => box.getAttribute('data-code')).toBe('rate_limit_exceeded');
    expect(await box.locator('a[href$="/app/billing"]').count()).toBe(0);
    // The day's credits, spent by two 40,000-credit images: a payment method lifts that.
    await page.selectOption(byTest('model-select'), 'dall-e-2');
    await page.selectOption('#image-size', '1024x1024');
    for (const prompt of ['a lighthouse', 'another lighthouse']) {
      await page.fill(byTest('prompt'), prompt);
      await page.click(byTest('send'));
      await page.waitForSelector(byTest('busy'), { state: 'detached' });
    }
    await expect.poll(() => box.getAttribute('data-code')).toBe('resource_exhausted');
    expect(await box.locator('a[href$="/app/billing"]').count()).toBe(1);
    await page.context().close();
  }, 60_000);

  it("a plan's refusal on a plan a payment method does not lift (an operator's team plan) points nowhere at Billing", async () => {
    const t = await gateway({
      config: {
        plans: {
          free: { preset: 'free-tier' },
          paid: { preset: 'pay-as-you-go' },
          team: { rules: [{ id: 'team_requests', measure: 'requests', limit: 1, window: 'day', scope: 'account+model', surfaces: ['playground'] }] },
        } as never,
      },
    });
    const page = await signUp(t, 'team@example.com', 'correct horse battery');
    page.setDefaultTimeout(10_000);
    const { account } = await page.evaluate(async () => (await fetch('/app/api/session')).json());
    await t.admin('PATCH', `/accounts/${account.id}`, { plan: 'team' });
    await page.reload();
    await page.locator(byTest('meter-credits')).waitFor();
    for (const prompt of ['one', 'two']) {
      await page.fill(byTest('prompt'), prompt);
      await page.click(byTest('send'));
      await page.waitForSelector(byTest('busy'), { state: 'detached' });
    }
    const box = page.locator(byTest('error-message'));
    expect(await box.getAttribute('data-code')).toBe('requests_per_day_exceeded');
    // Billing offers a team account no plan to move to: "Go to Billing to add a payment method" led
    // to a page where one only "keeps a payment method on file".
    expect(await box.locator('a[href$="/app/billing"]').count()).toBe(0);
    await page.click(byTest('nav-billing'));
    // Nor is the Free Tier its business: the page says who sets its plan.
    expect(await page.locator(byTest('billing-intro')).textContent()).toBe('Your plan, team, is set by the operator of this gateway.');
    expect(await page.locator(byTest('lift-terms')).count()).toBe(0);
    await page.context().close();
  }, 60_000);

  it('keeps the keyboard focus on the next control after Send, Stop, creating and revoking a key', async () => {
    const t = await gateway();
    const page = await signUp(t, 'keyboard@example.com', 'correct horse battery');
    page.setDefaultTimeout(10_000);
    const focused = () => page.evaluate(() => document.activeElement?.getAttribute('data-testid') ?? document.activeElement?.tagName.toLowerCase());
    // Send from the keyboard: Send is disabled while the answer streams, Stop takes the focus; Stop
    // goes when pressed, the message box takes it back. Both used to drop it to the page's body.
    let release!: () => void;
    t.openai.enqueue({ kind: 'sse', events: chatStreamFixture, holdBeforeIndex: 2, release: new Promise<void>((r) => (release = r)) });
    await page.fill(byTest('prompt'), 'a long one');
    await page.keyboard.press('Tab');
    expect(await focused()).toBe('send');
    await page.keyboard.press('Enter');
    await page.waitForSelector(byTest('busy'));
    await expect.poll(focused).toBe('stop');
    await page.keyboard.press('Enter');
    await page.waitForSelector(byTest('busy'), { state: 'detached' });
    release();
    await expect.poll(focused).toBe('prompt');
    // Create key: the focus goes to the new key, shown once.
    await page.click(byTest('nav-keys'));
    for (const name of ['laptop', 'ci']) {
      await page.fill(byTest('key-name'), name);
      await page.keyboard.press('Tab');
      expect(await focused()).toBe('key-expires');
      await page.keyboard.press('Tab');
      expect(await focused()).toBe('create-key');
      await page.keyboard.press('Enter');
      await expect.poll(() => page.evaluate(() => document.activeElement?.closest('.secret-box')?.textContent ?? '')).toContain(`“${name}” created`);
    }
    // Revoke: on to the other key's Revoke button.
    page.on('dialog', (d) => void d.accept());
    await page.locator(byTest('revoke')).first().focus();
    await page.keyboard.press('Enter');
    // The revoked key leaves the table for the folded "Revoked keys" list below it.
    await page.locator(byTest('revoked-keys'), { hasText: 'Revoked keys (1)' }).waitFor();
    await expect.poll(focused).toBe('revoke');
    expect(await page.locator(byTest('revoke')).count()).toBe(1);
    expect(await page.locator(`${byTest('revoked-keys')} ${byTest('key-row')}`).isVisible()).toBe(false);
    await page.click(`${byTest('revoked-keys')} summary`);
    const row = page.locator(`${byTest('revoked-keys')} ${byTest('key-row')}`);
    expect(await row.locator(byTest('key-status')).textContent()).toBe('Revoked');
    expect(await row.locator('td').nth(1).textContent()).toContain('laptop');
    // A revoked key's settings are history: nothing in its row edits them.
    expect(await row.locator('button').count()).toBe(0);
    // The last active key revoked: the table says so, the focus goes back to the name field.
    await page.locator(byTest('revoke')).focus();
    await page.keyboard.press('Enter');
    await page.locator(byTest('revoked-keys'), { hasText: 'Revoked keys (2)' }).waitFor();
    expect(await page.locator(byTest('no-keys')).textContent()).toBe('No active keys. Create one above.');
    await expect.poll(focused).toBe('key-name');
    await page.context().close();
  }, 60_000);

  it('"Skip to content" takes the keyboard past the header to the page', async () => {
    const t = await gateway();
    const page = await signUp(t, 'skip@example.com', 'correct horse battery');
    page.setDefaultTimeout(10_000);
    await page.goto(`${t.url}/app/keys`);
    await page.locator(byTest('key-name')).waitFor();
    const focused = () => page.evaluate(() => document.activeElement?.getAttribute('data-testid') ?? document.activeElement?.textContent?.trim());
    await page.keyboard.press('Tab');
    expect(await focused()).toBe('Skip to content');
    await page.keyboard.press('Enter');
    // The router took the link for a page change and dropped its #main: the next Tab was the header's first link.
    await page.keyboard.press('Tab');
    expect(await focused()).toBe('key-name');
    expect(new URL(page.url()).pathname).toBe('/app/keys');
    await page.context().close();
  }, 60_000);

  it("the Playground's limits box states the plan's own numbers: an operator's free tier, a team plan", async () => {
    const t = await gateway({
      config: {
        plans: {
          free: { preset: 'free-tier', rules: [{ id: 'api_token', limit: 100_000 }, { id: 'playground_requests', limit: 25 }] },
          paid: { preset: 'pay-as-you-go' },
          team: { rules: [{ id: 'daily_credits', measure: 'credits', limit: 2_000_000, window: 'day' }] },
          studio: {
            rules: [
              { id: 'pro_daily', measure: 'requests', limit: 3, window: 'day', scope: 'account+model', surfaces: ['playground'], models: { pro: true } },
              { id: 'images_daily', measure: 'requests', limit: 5, window: 'day', surfaces: ['playground'], models: { kinds: ['image'] } },
              { id: 'mini_credits', measure: 'credits', limit: 7_000, window: 'day', surfaces: ['playground'], models: { ids: ['gpt-4o-mini'] } },
            ],
          },
        } as never,
      },
    });
    const page = await signUp(t, 'limits@example.com', 'correct horse battery');
    page.setDefaultTimeout(10_000);
    const box = page.locator(byTest('plan-limits'));
    // It said "10 requests per day" and "50,000 credits per day" beside a meter of 25 and 100,000.
    await expect.poll(() => box.locator('li').allTextContents()).toEqual([
      'Regular models: 25 requests per day each. Pro models are not counted.',
      'One request at a time.',
      'All models, regular or Pro: 100,000 credits per day, shared with your API keys.',
    ]);
    expect(await box.locator('p').textContent()).toContain('Add a payment method on Billing to lift the daily limits.');
    // A team plan has no Playground request count and no one-at-a-time rule.
    const { account } = await page.evaluate(async () => (await fetch('/app/api/session')).json());
    await t.admin('PATCH', `/accounts/${account.id}`, { plan: 'team' });
    await page.reload();
    await expect.poll(() => box.locator('li').allTextContents()).toEqual(['All models, regular or Pro: 2,000,000 credits per day, shared with your API keys.']);
    // A payment method moves only the default plan to paid: the team plan is not told it lifts anything.
    expect(await box.locator('p').textContent()).not.toContain('payment method');
    expect(await page.textContent(byTest('meter-requests'))).toBe('No daily request limit for gpt-4o-mini on your plan');
    // Rules for some models only say which: they read "Every model: 3 requests per day each." and
    // "All models, regular or Pro: 5 requests per day.", limits the account's other models do not have.
    await t.admin('PATCH', `/accounts/${account.id}`, { plan: 'studio' });
    await page.reload();
    await expect.poll(() => box.locator('li').allTextContents()).toEqual([
      'Pro models: 3 requests per day each.',
      'Image models, regular or Pro: 5 requests per day.',
      'gpt-4o-mini: 7,000 credits per day.',
    ]);
    await page.context().close();
  }, 60_000);

  it('a link to Billing followed while signed out opens Billing after sign-in, and only an app page is followed', async () => {
    const t = await gateway();
    await t.admin('POST', '/accounts', { email: 'link@example.com', password: 'correct horse battery' });
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    page.setDefaultTimeout(10_000);
    const signIn = async () => {
      await page.fill(byTest('email'), 'link@example.com');
      await page.fill(byTest('password'), 'correct horse battery');
      await page.click(byTest('submit'));
    };
    // The link in an insufficient_balance or resource_exhausted message.
    await page.goto(`${t.url}/app/billing`);
    await page.waitForURL(/\/app\/signin/);
    await signIn();
    await page.waitForURL(/\/app\/billing$/);
    await page.locator(byTest('plan')).waitFor();
    await page.click(byTest('signout'));
    await page.waitForURL(/\/app\/signin$/);
    // Another address in `next` is not followed.
    await page.goto(`${t.url}/app/signin?next=${encodeURIComponent('//example.com/app/keys')}`);
    await signIn();
    await page.waitForURL(/\/app\/playground$/);
    await page.context().close();
  }, 60_000);

  it("long words (an image's prompt holding a URL, a key's name, an email) stay within a phone's screen", async () => {
    const t = await gateway();
    // An email is one word, up to 254 characters.
    const email = `${'firstname.lastname.'.repeat(4)}team@mail.examplecompany.com`;
    const page = await signUp(t, email, 'correct horse battery');
    page.setDefaultTimeout(10_000);
    await page.setViewportSize({ width: 375, height: 812 });
    await page.selectOption(byTest('model-select'), 'flux/schnell');
    await page.fill(byTest('prompt'), `in the style of https://example.com/gallery/${'a'.repeat(300)}.png`);
    await page.click(byTest('send'));
    await page.waitForSelector(byTest('busy'), { state: 'detached' });
    await page.locator('.result').waitFor();
    // The caption repeats the prompt: unbroken, it made the page ~2,000 px wide.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
    // A new key's box names it: 100 characters without a space made the page ~1,200 px wide.
    await page.click(byTest('nav-keys'));
    // Beside the expiry's select and the button, the name's field shrank (175 px here; 48 px, three
    // characters, at 390 px wide with the model list open).
    expect((await page.locator(byTest('key-name')).boundingBox())!.width).toBeGreaterThan(250);
    await page.fill(byTest('key-name'), 'k'.repeat(100));
    await page.click(byTest('create-key'));
    await page.locator(byTest('new-secret')).waitFor();
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
    // The keys table's row is a card here: nothing of it off to the right (Revoke sat at x = 728
    // of a table 803 px wide), the cells labelled.
    const row = page.locator(byTest('key-row')).first();
    const revoke = (await row.locator(byTest('revoke')).boundingBox())!;
    expect(revoke.x + revoke.width).toBeLessThanOrEqual(375);
    expect(await page.locator('.keys-table').evaluate((t) => t.closest('.table-scroll')!.scrollWidth <= t.closest('.table-scroll')!.clientWidth)).toBe(true);
    expect(await row.locator(byTest('key-status')).evaluate((td) => getComputedStyle(td, '::before').content)).toBe('"Status: "');
    // The Account page names the account whole: it made the page 1,052 px wide.
    await page.click(byTest('nav-account'));
    expect(await page.textContent(byTest('account-email'))).toBe(email);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
    await page.context().close();
  }, 60_000);

  it("on a phone, Usage's requests are labelled cards; Show more pages past the first 100; Download CSV exports them", async () => {
    const t = await gateway();
    const page = await signUp(t, 'usage-phone@example.com', 'correct horse battery');
    page.setDefaultTimeout(10_000);
    const accountId = await page.evaluate(() => fetch('/app/api/session').then((r) => r.json()).then((s) => s.account.id as string));
    const now = new Date().toISOString();
    await Promise.all(
      Array.from({ length: 130 }, (_, i) =>
        t.gw.storage.ledger.append({
          requestId: `phone-${i}`, accountId, keyId: null, model: 'gpt-4o-mini', surface: 'playground',
          promptTokens: 12_345, outputTokens: 512, credits: 123_456, status: i === 0 ? 'error' : 'ok', httpStatus: i === 0 ? 502 : 200, createdAt: now, provider: 'openai',
        }),
      ),
    );
    await page.setViewportSize({ width: 390, height: 844 });
    await page.click(byTest('nav-usage'));
    await expect.poll(() => page.locator(byTest('usage-row')).count()).toBe(100);
    // Credits and Status were off to the right of a table 848 px wide.
    const row = page.locator(byTest('usage-row')).first();
    for (const label of ['Credits', 'Status']) {
      const cell = row.locator(`td[data-label="${label}"]`);
      const box = (await cell.boundingBox())!;
      expect(box.x + box.width, label).toBeLessThanOrEqual(390);
      expect(await cell.evaluate((td) => getComputedStyle(td, '::before').content)).toBe(`"${label}: "`);
    }
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await page.click(byTest('usage-more'));
    await expect.poll(() => page.locator(byTest('usage-row')).count()).toBe(130);
    await page.locator(byTest('usage-more')).waitFor({ state: 'detached' });
    // The export link downloads every request of the chart's 30 days.
    const download = page.waitForEvent('download');
    await page.click(byTest('usage-export'));
    const file = await download;
    expect(file.suggestedFilename()).toMatch(/^tollgate-usage-.*\.csv$/);
    const { readFile } = await import('node:fs/promises');
    const csv = await readFile((await file.path())!, 'utf8');
    expect(csv.split('\r\n')).toHaveLength(132);
    await page.context().close();
  }, 60_000);

  it('an image model starts on its cheapest size, and says what an image costs and what is left before Generate', async () => {
    const wide = { id: 'wide-flux', kind: 'image' as const, provider: 'fal', upstream: 'fal-ai/flux/schnell', sizes: ['1024x1024', '1536x1024'], defaultSize: '1024x1024', price: { perImage: 0.003 } };
    const t = await gateway({ config: { models: [...testModels(), wide] } });
    const page = await signUp(t, 'image-cost@example.com', 'correct horse battery');
    page.setDefaultTimeout(10_000);
    await page.selectOption(byTest('model-select'), 'dall-e-2');
    // Its configured default, 1024x1024, was 40,000 of the free day's 50,000 credits in one click.
    await expect.poll(() => page.locator('#image-size').inputValue()).toBe('256x256');
    expect(await page.locator('#image-size option').allTextContents()).toEqual(['256x256 · 32,000 credits', '512x512 · 36,000 credits', '1024x1024 · 40,000 credits']);
    const cost = page.locator(byTest('image-cost'));
    await expect.poll(() => cost.textContent()).toBe('32,000 credits per image · 50,000 credits left');
    expect(await page.locator('#image-size').getAttribute('aria-describedby')).toBe('image-cost');
    await page.fill(byTest('prompt'), 'a lighthouse');
    await page.click(byTest('send'));
    await page.waitForSelector(byTest('busy'), { state: 'detached' });
    await page.selectOption('#image-size', '1024x1024');
    await expect.poll(() => cost.textContent()).toBe('40,000 credits per image · 18,000 credits left: more than is left, so it would be refused');
    expect(await cost.getAttribute('class')).toContain('warn-text');
    // One price for every size: the configured default stands.
    await page.selectOption(byTest('model-select'), 'flux/schnell');
    await expect.poll(() => cost.textContent()).toBe('6,000 credits per image · 18,000 credits left');
    // ... for an image of up to a megapixel: a larger one pays it per started megapixel, as charged.
    await page.selectOption(byTest('model-select'), 'wide-flux');
    expect(await page.locator('#image-size option').allTextContents()).toEqual(['1024x1024 · 6,000 credits', '1536x1024 · 12,000 credits']);
    await page.selectOption('#image-size', '1536x1024');
    await expect.poll(() => cost.textContent()).toBe('12,000 credits per image · 18,000 credits left');
    await page.context().close();
  }, 60_000);

  it("the usage chart's legend names a long model id whole, within a phone's screen, with its credits", async () => {
    const long = 'accounts/fireworks/models/llama-v3p1-405b-instruct-long-context';
    const t = await gateway({ config: { models: [...testModels(), { id: long, kind: 'chat', provider: 'openai', price: { input: 3, output: 3 } }] } });
    const page = await signUp(t, 'legend@example.com', 'correct horse battery');
    page.setDefaultTimeout(10_000);
    await page.setViewportSize({ width: 375, height: 812 });
    await page.selectOption(byTest('model-select'), long);
    await page.fill(byTest('prompt'), 'hello');
    await page.click(byTest('send'));
    await page.waitForSelector(byTest('busy'), { state: 'detached' });
    await page.click(byTest('nav-usage'));
    const legend = page.locator(byTest('usage-legend'));
    await legend.waitFor();
    // Drawn on the canvas, the id was cut at its edge; here it is whole, and wraps.
    expect(await legend.locator('.legend-model').allTextContents()).toEqual([long]);
    const spent = await page.textContent(byTest('usage-today'));
    expect(await legend.locator('.legend-total').textContent()).toBe(spent!.replace(/ credits$/, '').trim());
    const box = (await legend.boundingBox())!;
    expect(box.x + box.width).toBeLessThanOrEqual(375);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
    await page.context().close();
  }, 60_000);

  // A deploy replaces the build's hashed files: a tab opened before it still runs the old build, and
  // the chart's chunk it asks for on its first visit to Usage is gone (404). The chart stayed blank
  // until the reader reloaded by hand.
  it('a tab open across a deploy draws the Usage chart: a chunk of its build found gone loads the new build', async () => {
    const t = await gateway();
    const page = await signUp(t, 'deploy@example.com', 'correct horse battery');
    page.setDefaultTimeout(10_000);
    await page.route('**/app/assets/chart-*.js', (route) => route.fulfill({ status: 404, body: 'Not Found' }), { times: 1 });
    await page.click(byTest('nav-usage'));
    await page.waitForURL(/\/app\/usage$/);
    // A reload and the page's whole start again come before the chart: the long wait is for
    // the full suite's load on two cores.
    await expect.poll(() => page.evaluate(() => {
      const canvas = document.querySelector<HTMLCanvasElement>('[data-testid="usage-chart"]');
      if (!canvas) return false;
      const { data } = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height);
      return data.some((v) => v !== 0);
    }), { timeout: 40_000, interval: 250 }).toBe(true);
    // Drawn after the reload the missing chunk asked for (the page notes when it reloaded).
    expect(await page.evaluate(() => sessionStorage.getItem('tg_chunk_reload_at'))).not.toBeNull();
    expect(new URL(page.url()).pathname).toBe('/app/usage');
    await page.context().close();
  }, 60_000);

  it('an open Billing page shows what the operator changed once the reader comes back to the tab, and drops the error of a read that failed', async () => {
    const t = await gateway();
    const page = await signUp(t, 'returning@example.com', 'correct horse battery');
    page.setDefaultTimeout(10_000);
    await page.click(byTest('nav-billing'));
    await expect.poll(() => page.textContent(byTest('plan')), { timeout: 10_000 }).toBe('free');
    const { account } = await page.evaluate(async () => (await fetch('/app/api/session')).json());
    await t.admin('PATCH', `/accounts/${account.id}`, { paymentMethod: true });
    await t.admin('POST', `/accounts/${account.id}/credits`, { amount: 5000 });
    // Still what it read when it opened…
    expect(await page.textContent(byTest('plan'))).toBe('free');
    // …until the tab is shown again (another tab, a Stripe Checkout, was in front meanwhile).
    await page.waitForTimeout(1_100);
    await page.evaluate(() => document.dispatchEvent(new Event('visibilitychange')));
    await expect.poll(() => page.textContent(byTest('plan')), { timeout: 10_000 }).toBe('paid');
    expect(await page.getAttribute(byTest('balance'), 'data-value')).toBe('5000');
    // A Billing page opened while the gateway could not be reached shows the account once it can,
    // without the error of the read that failed.
    await page.route('**/app/api/billing', (route) => route.abort('connectionrefused'), { times: 1 });
    await page.click(byTest('nav-usage'));
    await page.click(byTest('nav-billing'));
    await page.locator(byTest('error-message')).waitFor();
    await page.waitForTimeout(1_100);
    await page.evaluate(() => document.dispatchEvent(new Event('visibilitychange')));
    await expect.poll(() => page.textContent(byTest('plan')), { timeout: 10_000 }).toBe('paid');
    expect(await page.locator(byTest('error-message')).count()).toBe(0);
    await page.context().close();
  }, 60_000);

  it('back from a hosted checkout, Billing says so and shows the change once the webhook lands, without a reload', async () => {
    const t = await gateway();
    const page = await signUp(t, 'checkout@example.com', 'correct horse battery');
    page.setDefaultTimeout(10_000);
    const { account } = await page.evaluate(async () => (await fetch('/app/api/session')).json());
    let reads = 0;
    page.on('response', (r) => void (new URL(r.url()).pathname === '/app/api/billing' && reads++));
    // Stripe sends the reader to its success_url; its webhook may come after.
    await page.goto(`${t.url}/app/billing?checkout=done`);
    await expect.poll(() => page.textContent(byTest('plan'))).toBe('free');
    expect(await page.textContent('.notice')).toContain('Payment submitted');
    await expect.poll(() => reads).toBeGreaterThanOrEqual(2);
    // The webhook lands (the manual provider's admin call makes the same change): the page read the
    // account once, and showed "free" and the button to pay again until the reader reloaded.
    await t.admin('PATCH', `/accounts/${account.id}`, { paymentMethod: true });
    await expect.poll(() => page.textContent(byTest('plan')), { timeout: 10_000 }).toBe('paid');
    // The header's plan too: it kept saying "free" until a reload.
    await expect.poll(() => page.textContent('header .plan-tag')).toBe('paid');
    expect(await page.locator(byTest('add-payment-method')).count()).toBe(0);
    expect(await page.textContent('.notice')).toBe('Payment confirmed.');
    expect(new URL(page.url()).search).toBe('');
    // A cancelled checkout is said to be one.
    await page.goto(`${t.url}/app/billing?checkout=cancelled`);
    await expect.poll(() => page.textContent('.notice')).toBe('Checkout cancelled: nothing was charged.');
    await page.context().close();
  }, 60_000);

  it('back from a hosted checkout whose webhook landed first, Billing says the payment is confirmed', async () => {
    const t = await gateway();
    const page = await signUp(t, 'webhook-first@example.com', 'correct horse battery');
    page.setDefaultTimeout(10_000);
    const { account } = await page.evaluate(async () => (await fetch('/app/api/session')).json());
    await page.goto(`${t.url}/app/billing`);
    await expect.poll(() => page.textContent(byTest('plan'))).toBe('free');
    // The reader leaves for the checkout from here (what the page keeps as it goes, as a Stripe
    // redirect would have it); the webhook lands before the reader is back.
    await page.evaluate(() => sessionStorage.setItem('tollgate.beforeCheckout', JSON.stringify({ plan: 'free', paymentMethod: false, balance: 0 })));
    await t.admin('PATCH', `/accounts/${account.id}`, { paymentMethod: true });
    await page.goto(`${t.url}/app/billing?checkout=done`);
    await expect.poll(() => page.textContent(byTest('plan'))).toBe('paid');
    // It said "Payment submitted" for the whole minute it read on: the first read had the change already.
    await expect.poll(() => page.textContent('.notice')).toBe('Payment confirmed.');
    expect(await page.evaluate(() => sessionStorage.getItem('tollgate.beforeCheckout'))).toBeNull();
    await page.context().close();
  }, 60_000);

  it("back from a top-up's checkout, Billing does not take the account's own spending for the payment", async () => {
    const t = await gateway();
    const page = await signUp(t, 'topup-return@example.com', 'correct horse battery');
    page.setDefaultTimeout(10_000);
    const { account } = await page.evaluate(async () => (await fetch('/app/api/session')).json());
    await t.admin('PATCH', `/accounts/${account.id}`, { paymentMethod: true });
    await t.admin('POST', `/accounts/${account.id}/credits`, { amount: 1_000_000 });
    const { key } = (await t.admin('POST', `/accounts/${account.id}/keys`, {})).body;
    let reads = 0;
    page.on('response', (r) => void (new URL(r.url()).pathname === '/app/api/billing' && reads++));
    await page.goto(`${t.url}/app/billing?checkout=done`);
    await expect.poll(() => page.getAttribute(byTest('balance'), 'data-value')).toBe('1000000');
    await expect.poll(() => reads).toBeGreaterThanOrEqual(2);
    // The account's API traffic goes on while the top-up's webhook is on its way: the balance falls.
    await t.client(key).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    const seen = reads;
    await expect.poll(() => page.getAttribute(byTest('balance'), 'data-value'), { timeout: 10_000 }).not.toBe('1000000');
    // It said "Payment confirmed." here and stopped reading: the top-up, landing after, never showed.
    expect(await page.textContent('.notice')).toContain('Payment submitted');
    await expect.poll(() => reads, { timeout: 10_000 }).toBeGreaterThanOrEqual(seen + 2);
    await t.admin('POST', `/accounts/${account.id}/credits`, { amount: 500_000 });
    await expect.poll(() => page.textContent('.notice'), { timeout: 10_000 }).toBe('Payment confirmed.');
    expect(Number(await page.getAttribute(byTest('balance'), 'data-value'))).toBeGreaterThan(1_000_000);
    await page.context().close();
  }, 60_000);

  it('a key needs a name before it is created (no raw validation text from the server)', async () => {
    const t = await gateway();
    const page = await signUp(t, 'keyname@example.com', 'correct horse battery');
    page.setDefaultTimeout(10_000);
    await page.click(byTest('nav-keys'));
    await page.fill(byTest('key-name'), '   ');
    await page.click(byTest('create-key'));
    expect(await page.locator(`${byTest('key-name')}:invalid`).count()).toBe(1);
    expect(await page.locator(byTest('error-message')).count()).toBe(0);
    expect(await page.locator(byTest('new-secret')).count()).toBe(0);
    await page.fill(byTest('key-name'), 'laptop');
    await page.click(byTest('create-key'));
    await page.locator(byTest('new-secret')).waitFor();
    await page.context().close();
  }, 60_000);

  it("a key's long name wraps in its row on a laptop, on Keys (the row's Revoke stays in sight) and on Usage", async () => {
    const t = await gateway();
    const page = await signUp(t, 'longname@example.com', 'correct horse battery');
    page.setDefaultTimeout(10_000);
    await page.click(byTest('nav-keys'));
    // 100 characters, the most a name may have, words and one long run (a host name) among them.
    const name = 'nightly export job for the analytics warehouse on eu-central-1.storage.internal.example.com cluster';
    await page.fill(byTest('key-name'), name);
    await page.click(byTest('create-key'));
    await page.locator(byTest('new-secret')).waitFor();
    // The name kept to one line, the table was wider than its 1,138 px card: Revoke, Status and
    // Access were out of sight, behind a scroll bar at the table's foot.
    const row = page.locator(byTest('key-row')).first();
    expect(await row.locator('td[data-label="Name"]').textContent()).toContain(name);
    expect(await page.locator('.keys-table').evaluate((t) => t.closest('.table-scroll')!.scrollWidth <= t.closest('.table-scroll')!.clientWidth)).toBe(true);
    const revoke = (await row.locator(byTest('revoke')).boundingBox())!;
    expect(revoke.x + revoke.width).toBeLessThanOrEqual(1280);
    // Usage names the key in each of its requests' rows: the table was 1,402 px wide in 1,138.
    const secret = /tg-[0-9A-Za-z]{43}/.exec((await page.locator(byTest('new-secret')).textContent()) ?? '')![0];
    await t.client(secret).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    await page.click(byTest('nav-usage'));
    await expect.poll(() => page.locator(byTest('usage-key')).textContent()).toBe(`· ${name}`);
    expect(await page.locator(byTest('usage-row')).first().evaluate((tr) => tr.closest('.table-scroll')!.scrollWidth <= tr.closest('.table-scroll')!.clientWidth)).toBe(true);
    await page.context().close();
  }, 60_000);

  it("a revocation on a slow network says it is on its way and is sent once however often Revoke is pressed; the revoked key's secret leaves the page", async () => {
    const t = await gateway();
    const page = await signUp(t, 'slowrevoke@example.com', 'correct horse battery');
    page.setDefaultTimeout(10_000);
    await page.click(byTest('nav-keys'));
    await page.fill(byTest('key-name'), 'laptop');
    await page.click(byTest('create-key'));
    await page.locator(byTest('new-secret')).waitFor();
    let deletes = 0;
    let letThrough!: () => void;
    const held = new Promise<void>((r) => (letThrough = r));
    await page.route('**/app/api/keys/*', async (route) => {
      if (route.request().method() !== 'DELETE') return route.continue();
      deletes++;
      await held;
      await route.continue();
    });
    let dialogs = 0;
    page.on('dialog', (d) => {
      dialogs++;
      void d.accept();
    });
    const button = page.locator(byTest('revoke'));
    await button.click();
    await expect.poll(() => button.textContent()).toBe('Revoking…');
    expect(await button.getAttribute('aria-disabled')).toBe('true');
    // Pressed again while the first is on its way: no second question, no second DELETE (forced:
    // Playwright waits for an aria-disabled button to be enabled; a person's click does not).
    await button.click({ force: true });
    await button.click({ force: true });
    letThrough();
    await page.locator(byTest('revoked-keys'), { hasText: 'Revoked keys (1)' }).waitFor();
    expect([dialogs, deletes]).toEqual([1, 1]);
    // The secret shown once was the key just revoked: it goes with it.
    expect(await page.locator(byTest('new-secret')).count()).toBe(0);
    await page.context().close();
  }, 60_000);

  it('the keyboard focus ring stands out from the page: at least 3:1 (WCAG 1.4.11)', async () => {
    const t = await gateway();
    const page = await signUp(t, 'focusring@example.com', 'correct horse battery');
    await page.click(byTest('nav-keys'));
    await page.locator(byTest('key-name')).focus();
    await page.keyboard.press('Tab');
    const ratio = await page.evaluate(() => {
      const rgb = (c: string) => (c.match(/\d+(\.\d+)?/g) ?? []).slice(0, 3).map(Number);
      const lum = (c: string) => {
        const [r, g, b] = rgb(c).map((v) => v / 255).map((v) => (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4));
        return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
      };
      const ring = getComputedStyle(document.activeElement!).outlineColor;
      // The ring is drawn outside the control, on the card around it.
      let under: Element | null = document.activeElement!.parentElement;
      while (under && getComputedStyle(under).backgroundColor === 'rgba(0, 0, 0, 0)') under = under.parentElement;
      const [a, b] = [lum(ring), lum(getComputedStyle(under ?? document.body).backgroundColor)];
      return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    });
    expect(ratio).toBeGreaterThanOrEqual(3);
    await page.context().close();
  }, 60_000);

  it('a sign-out that did not reach the gateway says the browser is still signed in; the next one signs out', async () => {
    const t = await gateway();
    const page = await signUp(t, 'signout@example.com', 'correct horse battery');
    page.setDefaultTimeout(10_000);
    await page.route('**/app/api/signout', (route) => route.abort('connectionrefused'), { times: 1 });
    await page.click(byTest('signout'));
    // The session cookie is the gateway's to end: the page went to sign-in, read the session (still
    // there), and came straight back to the Playground without a word.
    await expect.poll(() => page.locator(byTest('session-notice')).textContent()).toMatch(/^You are still signed in: signing out failed\. Could not reach the gateway/);
    expect(page.url()).toMatch(/\/app\/playground$/);
    expect((await page.evaluate(() => fetch('/app/api/session').then((r) => r.json()))).authenticated).toBe(true);
    await page.click(byTest('signout'));
    await page.waitForURL(/\/app\/signin$/);
    expect((await page.evaluate(() => fetch('/app/api/session').then((r) => r.json()))).authenticated).toBe(false);
    await page.context().close();
  }, 60_000);

  it('a Keys page that could not read the list says so and reads it again on request', async () => {
    const t = await gateway();
    const page = await signUp(t, 'keysdown@example.com', 'correct horse battery');
    page.setDefaultTimeout(10_000);
    // The gateway unreachable for the list's first read (restarting, a network drop).
    let refused = 0;
    await page.route('**/app/api/keys', (route) => (refused++ === 0 ? route.abort('connectionrefused') : route.continue()));
    await page.click(byTest('nav-keys'));
    await page.locator(byTest('error-message')).waitFor();
    // "Loading keys…" stayed for good beside the error, with no way to read the list but to leave.
    expect(await page.getByText('Loading keys…').count()).toBe(0);
    await page.click(byTest('keys-retry'));
    await page.locator(byTest('no-keys')).waitFor();
    expect(await page.locator(byTest('error-message')).count()).toBe(0);
    await page.context().close();
  }, 60_000);

  it("a key limited to a model the operator has since removed from the catalog still has its expiry changed, and the model unticked, in its row", async () => {
    const t = await gateway();
    const page = await signUp(t, 'retired@example.com', 'correct horse battery');
    page.setDefaultTimeout(10_000);
    await page.click(byTest('nav-keys'));
    await page.fill(byTest('key-name'), 'old scripts');
    await page.click(byTest('create-key'));
    await page.locator(byTest('new-secret')).waitFor();
    // As a key made for a model the config listed then: the store keeps what the catalog no longer has.
    const { id } = (await page.evaluate(() => fetch('/app/api/keys').then((r) => r.json()))).data[0];
    await t.gw.storage.keys.update(id, { models: ['gpt-3.5-turbo-retired'] });
    await page.click(byTest('nav-usage'));
    await page.click(byTest('nav-keys'));
    const row = page.locator(byTest('key-row')).first();
    await expect.poll(() => row.locator(byTest('key-only')).textContent()).toBe('Only gpt-3.5-turbo-retired');
    // Only the expiry changed: the models the key has are not sent back for the catalog to refuse.
    await row.locator(byTest('edit-access')).click();
    await row.locator(byTest('access-expires')).selectOption('30');
    await row.locator(byTest('save-access')).click();
    await expect.poll(() => row.locator(byTest('key-expiry')).textContent()).toMatch(/^Until /);
    expect(await page.locator(byTest('error-message')).count()).toBe(0);
    expect((await page.evaluate(() => fetch('/app/api/keys').then((r) => r.json()))).data[0].models).toEqual(['gpt-3.5-turbo-retired']);
    // The retired model is listed in the editor, ticked, so it can be taken off.
    await row.locator(byTest('edit-access')).click();
    await row.locator(`${byTest('key-model')}[value="gpt-3.5-turbo-retired"]`).uncheck();
    await row.locator(byTest('key-model') + '[value="text-embedding-3-small"]').check();
    await row.locator(byTest('save-access')).click();
    await expect.poll(() => row.locator(byTest('key-only')).textContent()).toBe('Only text-embedding-3-small');
    expect(await page.locator(byTest('error-message')).count()).toBe(0);
    await page.context().close();
  }, 60_000);

  it('with sign-up and key creation closed, offers neither form; the operator\'s account signs in and revokes its key', async () => {
    const t = await gateway({ config: { web: { signupsPerHour: 0, keysPerDay: 0 } } });
    const made = await t.admin('POST', '/accounts', { email: 'closed@example.com', password: 'correct horse battery' });
    await t.admin('POST', `/accounts/${made.body.id}/keys`, { name: 'from ops' });
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    page.setDefaultTimeout(10_000);
    // The sign-up page is the sign-in form, and nothing links to a sign-up that would be refused.
    await page.goto(`${t.url}/app/signup`);
    await page.locator('h1', { hasText: 'Sign in' }).waitFor();
    expect(await page.locator(byTest('switch-to-signup')).count()).toBe(0);
    expect(await page.locator(byTest('switch')).textContent()).toContain('created by its operator');
    await page.fill(byTest('email'), 'closed@example.com');
    await page.fill(byTest('password'), 'correct horse battery');
    await page.click(byTest('submit'));
    await page.waitForURL(/\/app\/playground/);
    await page.click(byTest('nav-keys'));
    await page.locator(byTest('keys-by-operator')).waitFor();
    expect(await page.locator(byTest('create-key')).count()).toBe(0);
    page.once('dialog', (d) => void d.accept());
    await page.click(byTest('revoke'));
    await page.locator(byTest('revoked-keys'), { hasText: 'Revoked keys (1)' }).waitFor();
    expect(await page.locator(byTest('no-keys')).textContent()).toBe('No active keys.');
    await page.context().close();
  }, 60_000);

  it('an answer stopped before its first word: the slot it holds is explained, and it is not sent back as an empty assistant turn; a bad email is marked on its field', async () => {
    const t = await gateway({ config: { upstream: { connectTimeoutMs: 1000, firstByteTimeoutMs: 500, totalTimeoutMs: 5000, idleTimeoutMs: 500 } } });
    const page = await signUp(t, 'stopped@example.com', 'correct horse battery');
    page.setDefaultTimeout(10_000);
    t.openai.enqueue({ kind: 'hang' });
    await page.fill(byTest('prompt'), 'first');
    await page.click(byTest('send'));
    await page.click(byTest('stop'));
    // Sent again at once, the stopped call still holds the Playground's one slot: said so, and
    // not as a plan refusal with a way to Billing.
    await page.fill(byTest('prompt'), 'too soon');
    await page.click(byTest('send'));
    const box = page.locator(byTest('error-message'));
    await expect.poll(() => box.getAttribute('data-code')).toBe('concurrency_limit');
    expect(await box.textContent()).toContain('The request you stopped is still finishing');
    expect(await box.locator('a[href$="/app/billing"]').count()).toBe(0);
    // The held slot frees when the upstream's first-byte limit ends the call (0.5 s here).
    await page.waitForTimeout(1_500);
    await page.fill(byTest('prompt'), 'second');
    await page.click(byTest('send'));
    await expect.poll(() => t.openai.requests.length).toBeGreaterThanOrEqual(2);
    await expect.poll(() => (t.openai.requests.at(-1)!.body as { messages: unknown[] }).messages.length).toBe(2);
    expect((t.openai.requests.at(-1)!.body as { messages: unknown[] }).messages).toEqual([
      { role: 'user', content: 'first' },
      { role: 'user', content: 'second' },
    ]);
    await page.context().close();

    const signin = await (await browser.newContext()).newPage();
    await signin.goto(`${t.url}/app/signin`);
    await signin.fill(byTest('email'), 'not an email');
    await signin.fill(byTest('password'), 'whatever');
    await signin.click(byTest('submit'));
    await signin.locator('#auth-error').waitFor();
    expect(await signin.getAttribute(byTest('email'), 'aria-invalid')).toBe('true');
    expect(await signin.getAttribute(byTest('email'), 'aria-describedby')).toBe('auth-error');
    expect(await signin.getAttribute(byTest('password'), 'aria-invalid')).toBeNull();
    await signin.context().close();
  }, 60_000);

  it('a refusal for the one slot after a reload says the running request is not this page\'s, with no way to Billing', async () => {
    const t = await gateway();
    const page = await signUp(t, 'reloaded@example.com', 'correct horse battery');
    page.setDefaultTimeout(10_000);
    let release!: () => void;
    t.openai.enqueue({ kind: 'sse', events: chatStreamFixture, holdBeforeIndex: 1, release: new Promise<void>((r) => (release = r)) });
    await page.fill(byTest('prompt'), 'a long one');
    await page.click(byTest('send'));
    await page.waitForSelector(byTest('busy'));
    // Reloaded mid-answer: the stream goes on at the gateway, holding the Playground's one slot.
    await page.reload();
    await page.locator(byTest('meter-credits')).waitFor();
    await page.fill(byTest('prompt'), 'again');
    await page.click(byTest('send'));
    const box = page.locator(byTest('error-message'));
    await expect.poll(() => box.getAttribute('data-code')).toBe('concurrency_limit');
    expect(await box.textContent()).toContain('None runs on this page: the one running is in another tab, through the API, or one this page started before it was reloaded.');
    expect(await box.locator('a[href$="/app/billing"]').count()).toBe(0);
    release();
    await page.context().close();
  }, 60_000);

  it('each reply in a conversation names the model that wrote it, after another model is chosen', async () => {
    const t = await gateway({ config: { models: [...testModels(), { id: 'gpt-4.1-nano', kind: 'chat', provider: 'openai', price: { input: 0.1, output: 0.4 } }] } });
    const page = await signUp(t, 'twomodels@example.com', 'correct horse battery');
    page.setDefaultTimeout(10_000);
    for (const model of ['gpt-4o-mini', 'gpt-4.1-nano']) {
      await page.selectOption(byTest('model-select'), model);
      await page.fill(byTest('prompt'), `hello ${model}`);
      await page.click(byTest('send'));
      await page.waitForSelector(byTest('busy'), { state: 'detached' });
    }
    // Each reply was labelled with the model selected now: gpt-4o-mini's answer read as gpt-4.1-nano's.
    expect(await page.locator('.msg-role').allTextContents()).toEqual(['You', 'gpt-4o-mini', 'You', 'gpt-4.1-nano']);
    await page.context().close();
  }, 60_000);

  it('follows a streaming answer only while the reader is at its end: scrolled up, the page stays put', async () => {
    const t = await gateway();
    const page = await signUp(t, 'scroll@example.com', 'correct horse battery');
    page.setDefaultTimeout(10_000);
    await page.setViewportSize({ width: 1000, height: 500 });
    const chunk = (delta: object, extra: object = {}) =>
      JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini', choices: [{ index: 0, delta, finish_reason: null }], ...extra });
    const lines = (n: number) => Array.from({ length: n }, (_, i) => `line ${i + 1} of a long answer`).join('\n');
    let release!: () => void;
    t.openai.enqueue({
      kind: 'sse',
      events: [
        chunk({ role: 'assistant', content: '' }),
        chunk({ content: lines(60) }),
        chunk({ content: `\n${lines(60)}` }),
        JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4o-mini', choices: [], usage: { prompt_tokens: 5, completion_tokens: 400, total_tokens: 405 } }),
        '[DONE]',
      ],
      holdBeforeIndex: 2,
      release: new Promise<void>((r) => (release = r)),
    });
    await page.fill(byTest('prompt'), 'a long one, please');
    await page.click(byTest('send'));
    // The first part is followed down to its end.
    await expect.poll(() => page.evaluate(() => window.scrollY)).toBeGreaterThan(200);
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.waitForTimeout(100);
    release();
    await page.waitForSelector(byTest('busy'), { state: 'detached' });
    expect(await page.evaluate(() => window.scrollY)).toBeLessThan(50);
    await page.context().close();
  }, 60_000);

  it("shows the gateway's day on Usage, not the browser's: the page read just after midnight by the browser's clock", async () => {
    // The gateway is 10 s before UTC midnight; the browser's clock already past it (the answer
    // arrived after midnight, or the computer's clock runs a little ahead).
    const clock = new ManualClock(Date.parse('2026-11-25T23:59:50Z'));
    const t = await gateway({ gateway: { clock } });
    const page = await signUp(t, 'midnight@example.com', 'correct horse battery', Date.parse('2026-11-26T00:00:05Z'));
    page.setDefaultTimeout(10_000);
    await page.fill(byTest('prompt'), 'hi');
    await page.click(byTest('send'));
    await page.waitForSelector(byTest('busy'), { state: 'detached' });
    const usage = await page.evaluate(() => fetch('/app/api/usage').then((r) => r.json()));
    const spent = usage.days.reduce((a: number, r: { credits: number }) => a + r.credits, 0);
    expect(spent).toBeGreaterThan(0);
    await page.click(byTest('nav-usage'));
    // The day the gateway counts in (its Playground meter, its budget) is still 2026-11-25: its
    // credits are today's. The browser's own date showed 0 and a chart a day off.
    await expect.poll(() => page.textContent(byTest('usage-today'))).toMatch(new RegExp(`^${spent} credits`));
    await page.context().close();
  }, 60_000);

  it('a request too big for the credits left says so beside the seed\'s "exhausted", and a shorter one passes', async () => {
    const t = await gateway({ config: { models: [...testModels(), { id: 'gpt-4o', kind: 'chat', provider: 'openai', pro: true, price: { input: 2.5, output: 10 } }] } });
    const page = await signUp(t, 'toobig@example.com', 'correct horse battery');
    page.setDefaultTimeout(10_000);
    await page.selectOption(byTest('model-select'), 'gpt-4o');
    // 4,000 tokens of gpt-4o's answer is 80,000 credits: past the whole 50,000 of the day, none spent.
    await page.fill('#max-tokens', '4000');
    await page.fill(byTest('prompt'), 'a long story');
    await page.click(byTest('send'));
    const box = page.locator(`${byTest('error-message')}[data-code="resource_exhausted"]`);
    await box.waitFor();
    expect(await box.locator('.error-text').textContent()).toContain('You have exhausted the available [plan.rule:api_token] resource limit');
    expect(await page.textContent(byTest('error-too-big'))).toMatch(/could cost up to 80,\d{3} credits .* more than the 50,000 left: ask for a shorter answer/s);
    await page.fill('#max-tokens', '512');
    await page.click(byTest('send'));
    await page.waitForSelector(byTest('busy'), { state: 'detached' });
    expect(await page.locator(byTest('error-message')).count()).toBe(0);
    await page.context().close();
  }, 60_000);

  it('the account link leads to the Account page, where the password changes given the current one (also on a phone)', async () => {
    const t = await gateway();
    const page = await signUp(t, 'account@example.com', 'correct horse battery');
    page.setDefaultTimeout(10_000);
    await page.setViewportSize({ width: 390, height: 800 });
    await page.click(byTest('nav-account'));
    await page.waitForURL(/\/app\/account$/);
    expect(await page.textContent(byTest('account-email'))).toBe('account@example.com');
    expect(await page.title()).toMatch(/^Account/);
    await page.fill(byTest('current-password'), 'not the password');
    await page.fill(byTest('new-password'), 'a longer new password');
    await page.click(byTest('change-password'));
    await page.locator(`${byTest('error-message')}[data-code="invalid_request"]`).waitFor();
    expect(await page.evaluate(() => document.activeElement?.getAttribute('data-testid'))).toBe('current-password');
    await page.fill(byTest('current-password'), 'correct horse battery');
    await page.click(byTest('change-password'));
    await page.locator(byTest('password-changed')).waitFor();
    expect(await page.inputValue(byTest('new-password'))).toBe('');
    // Still signed in, with the session the change issued: the next call passes its CSRF check.
    await page.click(byTest('nav-keys'));
    await page.fill(byTest('key-name'), 'after');
    await page.click(byTest('create-key'));
    await page.locator(byTest('new-secret')).waitFor();
    await page.context().close();
    // Signing in with it (and not with the old one): test/e2e/web-api.test.ts 'password'.
  }, 60_000);

  it("a reset link sets the owner's password and signs them in; the address bar keeps no token; a used link says so", async () => {
    const t = await gateway();
    const made = await t.admin('POST', '/accounts', { email: 'forgot@example.com', password: 'forgotten password' });
    const link = (await t.admin('POST', `/accounts/${made.body.id}/password-reset`)).body.url as string;
    const context = await browser.newContext({ viewport: { width: 390, height: 800 } });
    const page = await context.newPage();
    page.setDefaultTimeout(10_000);
    // The link names the configured publicUrl; the test gateway listens elsewhere.
    const here = `${t.url}/app/reset#${link.split('#')[1]}`;
    await page.goto(here);
    await page.locator(byTest('reset-password')).waitFor();
    expect(page.url()).toBe(`${t.url}/app/reset`);
    expect(await page.title()).toMatch(/^Set a new password/);
    await page.fill(byTest('reset-password'), 'short');
    await page.click(byTest('reset-submit'));
    await page.locator(byTest('reset-error')).waitFor();
    await page.fill(byTest('reset-password'), 'remembered this time');
    await page.click(byTest('reset-submit'));
    await page.waitForURL(/\/app\/playground/);
    await page.locator(byTest('meter-credits')).waitFor();
    // Spent: opened again, the link is refused with the reason, and the visitor stays signed in.
    await page.goto(here);
    await page.fill(byTest('reset-password'), 'and once more');
    await page.click(byTest('reset-submit'));
    expect(await page.textContent(byTest('reset-error'))).toContain('it was used, it expired, or the password changed');
    // Without its token the page says what is missing.
    await page.goto(`${t.url}/app/reset`);
    expect(await page.textContent(byTest('reset-error'))).toContain('the whole link');
    // The new link it asks for, opened in the same tab: only the fragment changes (no new load).
    const again = (await t.admin('POST', `/accounts/${made.body.id}/password-reset`)).body.url as string;
    await page.goto(`${t.url}/app/reset#${again.split('#')[1]}`);
    await page.fill(byTest('reset-password'), 'the one from the second link');
    await page.click(byTest('reset-submit'));
    await page.waitForURL(/\/app\/playground/);
    // A link mangled on its way (a stray %, no valid escape) is a link that does not work, not a blank page.
    await page.goto('about:blank');
    await page.goto(`${t.url}/app/reset#${link.split('#')[1]}%E0%A4%A`);
    await page.fill(byTest('reset-password'), 'and once more');
    await page.click(byTest('reset-submit'));
    expect(await page.textContent(byTest('reset-error'))).toContain('this password reset link does not work');
    await context.close();
  }, 60_000);

  it("says why a model is unavailable: the plan's reach, or no provider on this gateway", async () => {
    const t = await gateway();
    const page = await signUp(t, 'reach@example.com', 'correct horse battery');
    // 60,000 credits an image: past the free tier's day on every surface. Its provider is configured.
    await page.selectOption(byTest('model-select'), 'flux/dev/image-to-image');
    expect(await page.textContent(byTest('unavailable-hint'))).toContain('Your plan does not reach this model here');
    await page.selectOption(byTest('model-select'), 'unkeyed-chat');
    expect(await page.textContent(byTest('unavailable-hint'))).toContain("This model's provider is not configured on this gateway");
    await page.selectOption(byTest('model-select'), 'gpt-4o-mini');
    expect(await page.locator(byTest('unavailable-hint')).count()).toBe(0);
    await page.context().close();
  }, 60_000);

  it('an image-to-image model asks for its source image (Enter too) and sends it', async () => {
    // Priced within the free tier's 512-credit image ceiling (the test catalog's 0.03 USD is 60,000 credits).
    const models = testModels().map((m) => (m.id === 'flux/dev/image-to-image' && m.kind === 'image' ? { ...m, price: { perImage: 0.0002 } } : m));
    const t = await gateway({ config: { models } });
    const page = await signUp(t, 'i2i@example.com', 'correct horse battery');
    await page.selectOption(byTest('model-select'), 'flux/dev/image-to-image');
    // Enter in the prompt is held to the form's checks as Send is: it sent the request without the
    // source image, and showed the gateway's "Invalid request: image_url: …".
    await page.fill(byTest('prompt'), 'no source yet');
    await page.press(byTest('prompt'), 'Enter');
    expect(await page.locator('#image-url:invalid').count()).toBe(1);
    await page.waitForTimeout(500);
    expect(await page.locator(byTest('error-message')).count()).toBe(0);
    expect(t.fal.requests).toHaveLength(0);
    // Without the field every request to this model was a 400 (image_url is required).
    await page.fill('#image-url', 'https://example.com/source.png');
    await page.fill(byTest('prompt'), 'the same, in watercolour');
    await page.click(byTest('send'));
    await page.waitForSelector(byTest('busy'), { state: 'detached', timeout: 10_000 });
    await page.locator('img[alt^="Generated image 1"]').waitFor({ timeout: 10_000 });
    expect(t.fal.requests.at(-1)!.body).toMatchObject({ image_url: 'https://example.com/source.png', prompt: 'the same, in watercolour' });
    await page.context().close();
  }, 60_000);

  it('a page open for one account, after another tab signed in as someone else, creates nothing for that one and shows who is signed in', async () => {
    const t = await gateway({ config: { web: { signupsPerHour: 100_000 } } });
    const first = await signUp(t, 'first@example.com', 'correct horse battery');
    await first.goto(`${t.url}/app/keys`);
    await first.locator(byTest('key-name')).waitFor();
    // Another tab of the same browser (same cookies) signs out and signs up as someone else.
    const other = await first.context().newPage();
    await other.goto(`${t.url}/app/keys`);
    await other.click(byTest('signout'));
    await other.waitForURL(/\/app\/signin/);
    await other.goto(`${t.url}/app/signup`);
    await other.fill(byTest('email'), 'second@example.com');
    await other.fill(byTest('password'), 'correct horse battery');
    await other.click(byTest('submit'));
    await other.waitForURL(/\/app\/playground/);
    const second = (await t.admin('GET', `/accounts?email=second%40example.com`)).body.data[0].id as string;

    // The first tab still shows first@: a key made from it must not land in second@'s account.
    await first.fill(byTest('key-name'), 'meant for first');
    await first.click(byTest('create-key'));
    await expect.poll(() => first.locator(byTest('session-notice')).textContent(), { timeout: 10_000 }).toMatch(/another account/);
    await expect.poll(() => first.locator('.who').textContent()).toMatch(/second@example\.com/);
    expect((await t.admin('GET', `/accounts/${second}/keys`)).body.data.map((k: { name: string }) => k.name)).not.toContain('meant for first');
    // From here on the tab is second@'s, and acts as such.
    await first.fill(byTest('key-name'), 'made as second');
    await first.click(byTest('create-key'));
    await expect
      .poll(async () => (await t.admin('GET', `/accounts/${second}/keys`)).body.data.map((k: { name: string }) => k.name), { timeout: 10_000 })
      .toContain('made as second');
    await first.context().close();
  }, 60_000);
});
