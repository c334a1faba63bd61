// The app installs and starts offline: manifest, icons, service worker registration and offline start, against the real plazad.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, watchErrors, shot, PHONE, DESKTOP } from './harness.mjs';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

// Width and height from a PNG's IHDR chunk.
function pngSize(buf) {
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  assert.deepEqual([...buf.subarray(0, 8)], sig, 'a PNG file');
  return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) };
}

test('the manifest describes an installable app with real icons', async () => {
  const res = await fetch(`${server.url}/manifest.webmanifest`);
  assert.equal(res.status, 200);
  const manifest = JSON.parse(await res.text());
  assert.equal(manifest.name, 'Plaza');
  assert.ok(manifest.short_name);
  assert.equal(manifest.start_url, '/');
  assert.equal(manifest.display, 'standalone');
  assert.match(manifest.theme_color, /^#[0-9a-f]{6}$/i);
  assert.match(manifest.background_color, /^#[0-9a-f]{6}$/i);

  const pngs = manifest.icons.filter((i) => i.type === 'image/png');
  for (const [size, purpose] of [['192x192', 'any'], ['512x512', 'any'], ['192x192', 'maskable'], ['512x512', 'maskable']]) {
    const icon = pngs.find((i) => i.sizes === size && (i.purpose || 'any').split(' ').includes(purpose));
    assert.ok(icon, `a ${purpose} PNG icon of ${size}`);
    const r = await fetch(new URL(icon.src, server.url));
    assert.equal(r.status, 200, icon.src);
    const { width, height } = pngSize(Buffer.from(await r.arrayBuffer()));
    assert.equal(`${width}x${height}`, size, icon.src);
  }
});

test('the service worker script and a deep link are served', async () => {
  const sw = await fetch(`${server.url}/sw.js`);
  assert.equal(sw.status, 200);
  assert.match(sw.headers.get('content-type') || '', /javascript/);
  // A cached worker or page would keep people on an old version after an update.
  assert.match(sw.headers.get('cache-control') || '', /no-cache/);
  assert.match((await fetch(`${server.url}/`)).headers.get('cache-control') || '', /no-cache/);
  // A path the app routes itself gets the page, so links and reloads work.
  const deep = await fetch(`${server.url}/contacts/new`);
  assert.equal(deep.status, 200);
  assert.match(await deep.text(), /<title>Plaza<\/title>/);
});

test('the service worker registers and the app starts offline', async () => {
  const ctx = await browser.newContext({ ...PHONE, baseURL: server.url });
  const page = await ctx.newPage();
  const errors = watchErrors(page, 'pwa');
  await page.goto('/');
  await page.getByRole('link', { name: 'Create account' }).waitFor();

  const scope = await page.evaluate(async () => (await navigator.serviceWorker.ready).scope);
  assert.equal(scope, `${server.url}/`);
  // The worker claims the page once it activates; only then does it answer this page's requests.
  await page.waitForFunction(() => navigator.serviceWorker.controller !== null);

  // Sign up online, so that the offline start below is a signed-in one.
  await page.getByRole('link', { name: 'Create account' }).click();
  await page.getByLabel('Name', { exact: true }).fill('Olive Offline');
  await page.getByLabel('Username').fill('olive');
  await page.getByLabel('Password', { exact: true }).fill('offline first');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByText('No chats yet').waitFor();
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: /^Contacts/ }).click();
  await page.getByText('No contacts yet').waitFor();

  // Empty the browser's HTTP cache, so what starts below can only come from the service worker's cache.
  const cdp = await ctx.newCDPSession(page);
  await cdp.send('Network.clearBrowserCache');
  await ctx.setOffline(true);
  await page.reload();
  // The shell comes from the cache: the tabs are there.
  await page.getByRole('navigation', { name: 'Main' }).waitFor();
  // API answers are never cached: the contact list says it cannot load instead of showing stale data.
  const alert = page.getByRole('alert');
  await alert.first().waitFor();
  assert.match(await alert.first().innerText(), /offline|reach/i);
  await shot(page, 'offline-phone');

  const cached = await page.evaluate(async () => {
    const urls = [];
    for (const name of await caches.keys()) {
      const cache = await caches.open(name);
      for (const req of await cache.keys()) urls.push(new URL(req.url).pathname);
    }
    return urls;
  });
  assert.ok(cached.includes('/app.js'), 'the shell is cached');
  assert.deepEqual(cached.filter((p) => p.startsWith('/v1/')), [], 'no API response is cached');

  await ctx.setOffline(false);
  await page.reload();
  await page.getByText('No contacts yet').waitFor();
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('dark mode follows the system setting', async () => {
  const ctx = await browser.newContext({ ...DESKTOP, baseURL: server.url, colorScheme: 'dark' });
  const page = await ctx.newPage();
  await page.goto('/');
  await page.getByRole('link', { name: 'Create account' }).waitFor();
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const [r, g, b] = bg.match(/\d+/g).map(Number);
  assert.ok(r + g + b < 120, `a dark page background, got ${bg}`);
  await shot(page, 'welcome-dark-desktop');
  await ctx.close();
});
