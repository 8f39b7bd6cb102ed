// The login page in a real browser, the server in --auth-mode token (started by run.sh;
// MR_UI_BASE is its address, MR_UI_TOKEN a writer's token): signing in through the page, a model
// seen, the cookie's attributes, signing out.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const BASE = process.env.MR_UI_BASE ?? assert.fail('MR_UI_BASE (the server address) is not set');
const TOKEN = process.env.MR_UI_TOKEN ?? assert.fail('MR_UI_TOKEN (a writer token of the server) is not set');
const OUT = process.env.MR_UI_OUT ?? 'out';
const BROWSER = process.env.MR_UI_CHROMIUM ?? '/usr/bin/chromium';
const API = `${BASE}/api/model_registry/v1alpha3`;

let browser;
before(async () => {
  mkdirSync(OUT, { recursive: true });
  browser = await chromium.launch({ executablePath: BROWSER, headless: true, args: ['--no-sandbox'] });
});
after(async () => browser?.close());

test('sign in through the login page, see a model, sign out', async () => {
  const name = `signed-${Date.now().toString(36)}`;
  const created = await fetch(`${API}/registered_models`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ name, description: 'seen after signing in' }),
  });
  assert.equal(created.status, 201);
  const model = await created.json();
  assert.equal((await fetch(`${API}/registered_models`)).status, 401, 'the API wants a token');

  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.on('dialog', (dialog) => assert.fail(`unexpected dialog: ${dialog.message()}`));

  // A page asked for without a token: the login page, which returns there after signing in.
  await page.goto(`${BASE}/ui/models/${model.id}`);
  assert.equal(new URL(page.url()).pathname, '/ui/login');
  assert.equal(new URL(page.url()).searchParams.get('next'), `/ui/models/${model.id}`);

  await page.getByLabel('Token').fill('not-the-token');
  await page.getByRole('button', { name: 'Sign in' }).click();
  assert.match(await page.getByRole('alert').textContent(), /not accepted/);
  assert.deepEqual((await context.cookies()).filter((c) => c.name === 'mr_session'), [], 'nothing set');

  await page.getByLabel('Token').fill(TOKEN);
  await page.getByRole('button', { name: 'Sign in' }).click();
  assert.equal(new URL(page.url()).pathname, `/ui/models/${model.id}`);
  assert.equal((await page.getByRole('heading', { level: 1 }).textContent()).trim(), name);
  assert.match(await page.locator('form.session').textContent(), /Signed in as\s+e2e/);
  const [session] = (await context.cookies()).filter((c) => c.name === 'mr_session');
  assert.deepEqual([session.httpOnly, session.sameSite, session.path, session.secure], [true, 'Strict', '/', false]);
  assert.ok(session.expires > Date.now() / 1000 && session.expires <= Date.now() / 1000 + 8 * 3600 + 60, 'a bounded life');
  // No script of a page can read it.
  assert.equal(await page.evaluate(() => document.cookie.includes('mr_session')), false);
  await page.screenshot({ path: `${OUT}/signed-in.png`, fullPage: true });

  await page.getByRole('button', { name: 'Sign out' }).click();
  assert.equal(new URL(page.url()).pathname, '/ui/login');
  assert.deepEqual((await context.cookies()).filter((c) => c.name === 'mr_session'), []);
  await page.goto(`${BASE}/ui/`);
  assert.equal(new URL(page.url()).pathname, '/ui/login', 'signed out: the login page again');
  await context.close();
});

test('axe-core finds no serious or critical violation on the login page; screenshot', async () => {
  // axe is injected as a script, which the UI's own policy forbids: this context ignores it.
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, bypassCSP: true });
  const page = await context.newPage();
  await page.goto(`${BASE}/ui/login`);
  await page.addScriptTag({ content: AXE });
  const violations = await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ['violations'] })).violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`));
  assert.deepEqual(violations, []);
  await page.screenshot({ path: `${OUT}/login.png`, fullPage: true });
  await context.close();
});
