// A device offline for longer than the server keeps events: back online, it is told to reload, and its chat list
// and the open chat show what came meanwhile, once.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, watchErrors, shot, DESKTOP, apiRequest, visible } from './harness.mjs';

let server;
let browser;
let ctx;
let page;
let errors;
const ALICE = { name: 'Alice Reed', username: 'alice_ret', password: 'correct horse battery' };
const BOB = { name: 'Bob Marsh', username: 'bob_ret', password: 'tr0ub4dor&3x' };
let alice;
let bob;
let conv;

const call = (method, path, token, body) => apiRequest(server, method, path, token, body);

before(async () => {
  // 30 days in production; 2 s here.
  server = await startServer({ env: { PLAZA_TEST_EVENT_RETENTION_MS: '2000' } });
  browser = await launchBrowser();
  alice = (await call('POST', '/v1/accounts', null, { username: ALICE.username, password: ALICE.password, display_name: ALICE.name })).json;
  bob = (await call('POST', '/v1/accounts', null, { username: BOB.username, password: BOB.password, display_name: BOB.name })).json;
  const req = await call('POST', '/v1/contacts/requests', alice.token, { user_id: bob.user.id });
  await call('POST', `/v1/contacts/requests/${req.json.request.id}/accept`, bob.token);
  conv = (await call('POST', '/v1/conversations', alice.token, { type: 'direct', user_id: bob.user.id })).json.conversation;
  await call('POST', `/v1/conversations/${conv.id}/messages`, alice.token, { client_id: 'r-0', text: 'Before you left' });
  ctx = await browser.newContext({ ...DESKTOP, baseURL: server.url });
  page = await ctx.newPage();
  errors = watchErrors(page, 'bob');
  await page.goto('/login');
  await page.getByLabel('Username').fill(BOB.username);
  await page.getByLabel('Password', { exact: true }).fill(BOB.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await visible(page.getByRole('link', { name: new RegExp(`^${ALICE.name}.*Before you left`) }), 15000);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('offline past the retention, the chat list and the chat reload and show what came, once', { timeout: 120000 }, async () => {
  // Bob opens the chat, then the network goes.
  await page.getByRole('link', { name: new RegExp(`^${ALICE.name}`) }).click();
  const log = page.getByRole('log', { name: 'Messages' });
  await visible(log.getByText('Before you left'));
  const seen = (await call('GET', '/v1/sync?since=0', bob.token)).json.next_since;
  await ctx.setOffline(true);
  await visible(page.getByText('You are offline.', { exact: false }));
  for (const t of ['Away one', 'Away two', 'Away three'])
    await call('POST', `/v1/conversations/${conv.id}/messages`, alice.token, { client_id: t, text: t });
  // Until the server no longer has the events after what Bob's device saw.
  const deadline = Date.now() + 30000;
  while ((await call('GET', `/v1/sync?since=${seen}`, bob.token)).status !== 410) {
    assert.ok(Date.now() < deadline, 'the events are still kept after 30 s');
    await page.waitForTimeout(250);
  }
  await ctx.setOffline(false);
  // The reset makes the client read the chat again: every message once, in order.
  const deadline2 = Date.now() + 20000;
  for (;;) {
    const texts = await log.locator('.msg-body').allInnerTexts();
    if (JSON.stringify(texts) === JSON.stringify(['Before you left', 'Away one', 'Away two', 'Away three'])) break;
    assert.ok(Date.now() < deadline2, `messages on screen: ${JSON.stringify(texts)}`);
    await page.waitForTimeout(200);
  }
  await shot(page, 'chat-after-retention-reset-desktop');
  // And the stream goes on live from there.
  await call('POST', `/v1/conversations/${conv.id}/messages`, alice.token, { client_id: 'r-live', text: 'Welcome back' });
  await visible(log.getByText('Welcome back'));
  assert.equal(await log.getByText('Welcome back', { exact: true }).count(), 1);
  assert.deepEqual(errors, []);
});
