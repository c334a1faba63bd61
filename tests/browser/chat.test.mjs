// Two people chat, one on a phone and one on a desktop: real-time delivery, unread badges, an offline outbox that resends exactly once, history after reload.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, watchErrors, shot, PHONE, DESKTOP, apiCall, visible } from './harness.mjs';

let server;
let browser;
let ctxA;
let ctxB;
let alice; // phone
let bob; // desktop
const errorLists = [];
const tokens = {};

const ALICE = { name: 'Alice Wong', username: 'alice_chat', password: 'correct horse battery' };
const BOB = { name: 'Bob Stone', username: 'bob_chat', password: 'tr0ub4dor&3x' };

const call = (method, path, token, body) => apiCall(server, method, path, token, body);

function nav(page) {
  return page.getByRole('navigation', { name: 'Main' });
}

function log(page) {
  return page.getByRole('log', { name: 'Messages' });
}

function composer(page) {
  return page.getByRole('textbox', { name: 'Message' });
}

// The texts of the messages on screen, top to bottom.
function texts(page) {
  return log(page).locator('.msg-body').allInnerTexts();
}

// How many times text shows as a message: what "exactly once" means to a reader.
async function countOf(page, text) {
  return (await texts(page)).filter((t) => t === text).length;
}

async function waitCount(page, text, n, timeout = 15000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const got = await countOf(page, text);
    if (got === n) return;
    if (Date.now() > deadline) assert.fail(`“${text}” shows ${got} times, expected ${n}; messages: ${JSON.stringify(await texts(page))}`);
    await page.waitForTimeout(100);
  }
}

async function login(page, who) {
  await page.goto('/login');
  await page.getByLabel('Username').fill(who.username);
  await page.getByLabel('Password', { exact: true }).fill(who.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await visible(nav(page));
}

async function sendText(page, text) {
  await composer(page).fill(text);
  await composer(page).press('Enter');
}

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  // Accounts and the friendship are set up through the API; the chat is what is tested.
  const a = await call('POST', '/v1/accounts', null, { username: ALICE.username, password: ALICE.password, display_name: ALICE.name });
  const b = await call('POST', '/v1/accounts', null, { username: BOB.username, password: BOB.password, display_name: BOB.name });
  tokens.alice = a.token;
  tokens.bob = b.token;
  const req = await call('POST', '/v1/contacts/requests', a.token, { user_id: b.user.id, greeting: 'Hi' });
  await call('POST', `/v1/contacts/requests/${req.request.id}/accept`, b.token);
  ctxA = await browser.newContext({ ...PHONE, baseURL: server.url });
  // Bob's requests are intercepted below; a service worker would hide them from page.route.
  ctxB = await browser.newContext({ ...DESKTOP, baseURL: server.url, serviceWorkers: 'block' });
  alice = await ctxA.newPage();
  bob = await ctxB.newPage();
  errorLists.push(watchErrors(alice, 'alice'), watchErrors(bob, 'bob'));
  await login(alice, ALICE);
  await login(bob, BOB);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('a direct chat between a phone and a desktop', { timeout: 300000 }, async (t) => {
  await t.test('Alice starts the chat from Bob’s contact page', async () => {
    await nav(alice).getByRole('link', { name: /^Contacts/ }).click();
    await alice.getByRole('link', { name: new RegExp(`${BOB.name}.*@${BOB.username}`) }).click();
    await alice.getByRole('button', { name: 'Message' }).click();
    await visible(alice.getByRole('heading', { name: BOB.name, level: 1 }));
    await visible(alice.getByText(`This is the beginning of your chat with ${BOB.name}.`));
    assert.equal(new URL(alice.url()).pathname.startsWith('/chats/'), true);
    await shot(alice, 'chat-empty-phone');
  });

  await t.test('a message shows at once for the sender and in real time for the other', async () => {
    await sendText(alice, 'Hi Bob! Are we still on for Saturday?');
    await waitCount(alice, 'Hi Bob! Are we still on for Saturday?', 1);
    assert.equal(await composer(alice).inputValue(), '', 'the composer is cleared');
    // Bob sits on his chat list: the chat appears with the preview and unread badges.
    const row = bob.getByRole('link', { name: new RegExp(`^${ALICE.name}, 1 unread message, Hi Bob! Are we still on for Saturday\\?`) });
    await visible(row);
    await visible(nav(bob).getByRole('link', { name: /^Chats.*, 1 unread message$/ }));
    await shot(bob, 'chat-list-unread-desktop');
    await row.click();
    await waitCount(bob, 'Hi Bob! Are we still on for Saturday?', 1);
    // Opening the chat reads it: the badges go.
    await visible(nav(bob).getByRole('link', { name: /^Chats$/ }));
    await visible(bob.getByRole('link', { name: new RegExp(`^${ALICE.name}, (?!\\d+ unread)`) }));

    await composer(bob).fill('Yes! 10am at the climbing gym 🧗');
    await bob.getByRole('button', { name: 'Send', exact: true }).click();
    await waitCount(alice, 'Yes! 10am at the climbing gym 🧗', 1);
    // Shift+Enter is a new line, Enter sends.
    await composer(alice).fill('Great.');
    await composer(alice).press('Shift+Enter');
    await composer(alice).type('I will bring the ropes.');
    await composer(alice).press('Enter');
    await waitCount(bob, 'Great.\nI will bring the ropes.', 1);
    await waitCount(alice, 'Great.\nI will bring the ropes.', 1);
    // Own messages on the right, the other's on the left.
    const mine = alice.locator('.msg-row.mine .msg-body', { hasText: 'I will bring the ropes.' });
    const theirs = bob.locator('.msg-row.theirs .msg-body', { hasText: 'I will bring the ropes.' });
    await visible(mine);
    await visible(theirs);
    await shot(alice, 'chat-phone');
    await shot(bob, 'chat-desktop');
  });

  await t.test('offline, Bob’s messages wait as “sending”; back online they arrive once, in order', async () => {
    const before = await texts(bob);
    await ctxB.setOffline(true);
    await visible(bob.getByText('You are offline.', { exact: false }));
    await sendText(bob, 'Queued one');
    await sendText(bob, 'Queued two');
    await waitCount(bob, 'Queued one', 1);
    await waitCount(bob, 'Queued two', 1);
    assert.equal(await log(bob).locator('[data-state="sending"]').count(), 2);
    await visible(log(bob).getByText('Sending').first());
    await shot(bob, 'chat-offline-desktop');

    await sendText(alice, 'While you were away');
    await waitCount(alice, 'While you were away', 1);
    await visible(log(alice).locator('.msg-row.mine[data-state="sent"]').filter({ hasText: 'While you were away' }));
    // Nothing crossed while Bob was offline, either way.
    await alice.waitForTimeout(1500);
    assert.equal(await countOf(alice, 'Queued one'), 0);
    assert.equal(await countOf(bob, 'While you were away'), 0);
    assert.equal(await log(bob).locator('[data-state="sending"]').count(), 2);

    // The first send after the network returns is stored by the server but
    // its answer is lost, and Bob's new socket is held back so no event tells
    // him: the client must retry with the same client_id and get the stored
    // message back, not store a second one.
    const attempts = [];
    await bob.route('**/v1/conversations/*/messages', async (route) => {
      const req = route.request();
      if (req.method() !== 'POST') return route.continue();
      attempts.push(JSON.parse(req.postData()).client_id);
      if (attempts.length > 1) return route.continue();
      await route.fetch();
      return route.abort('connectionreset');
    });
    let hold = true;
    const held = []; // [socket, frame] from the server, not yet passed on
    await bob.routeWebSocket(/\/v1\/ws$/, (ws) => {
      const upstream = ws.connectToServer();
      upstream.onMessage((m) => (hold ? held.push([ws, m]) : ws.send(m)));
    });
    const release = () => { hold = false; for (const [ws, m] of held.splice(0)) ws.send(m); };
    await ctxB.setOffline(false);
    await bob.waitForFunction(() => document.querySelectorAll('.chat-msgs [data-state="sending"]').length === 0, null, { timeout: 20000 });
    assert.equal(attempts.length, 3, `sends over HTTP: ${JSON.stringify(attempts)}`);
    assert.equal(attempts[1], attempts[0], 'the retry reuses the client_id');
    assert.notEqual(attempts[2], attempts[0]);
    await bob.unroute('**/v1/conversations/*/messages');
    release();
    await waitCount(alice, 'Queued one', 1);
    await waitCount(alice, 'Queued two', 1);
    await waitCount(bob, 'While you were away', 1);
    // Give a duplicate time to show up if one were on its way.
    await bob.waitForTimeout(1500);
    const expected = [...before, 'While you were away', 'Queued one', 'Queued two'];
    assert.deepEqual(await texts(bob), expected);
    assert.deepEqual(await texts(alice), expected);
    await shot(bob, 'chat-back-online-desktop');
  });

  await t.test('the chat list shows unread counts while Alice is elsewhere', async () => {
    await alice.getByRole('link', { name: 'Back' }).click();
    await visible(alice.getByRole('link', { name: new RegExp(`^${BOB.name}`) }));
    await sendText(bob, 'Ping 1');
    await sendText(bob, 'Ping 2');
    const row = alice.getByRole('link', { name: new RegExp(`^${BOB.name}, 2 unread messages, Ping 2`) });
    await visible(row);
    await visible(nav(alice).getByRole('link', { name: /^Chats.*, 2 unread messages$/ }));
    await shot(alice, 'chat-list-phone');
    // Alice's phone has them, she has not read them: Bob sees Delivered, then Read.
    const ping = log(bob).locator('.msg-row.mine').filter({ has: bob.getByText('Ping 2', { exact: true }) });
    await visible(ping.and(bob.locator('[data-state="delivered"]')));
    await visible(ping.getByText('Delivered'));
    await row.click();
    await waitCount(alice, 'Ping 2', 1);
    await visible(ping.and(bob.locator('[data-state="read"]')));
    // Where her reading stopped is marked, right above the first unread message.
    const order = await log(alice).locator('.msg-unread, .msg-body').allInnerTexts();
    assert.deepEqual(order.slice(-3), ['Unread messages', 'Ping 1', 'Ping 2']);
    await alice.getByRole('link', { name: 'Back' }).click();
    await visible(alice.getByRole('link', { name: new RegExp(`^${BOB.name}, Ping 2`) }));
  });

  await t.test('a reload shows the same history once; older pages load on scrolling up', async () => {
    await alice.getByRole('link', { name: new RegExp(`^${BOB.name}, Ping 2`) }).click();
    await waitCount(alice, 'Ping 2', 1);
    const before = await texts(alice);
    await bob.reload();
    await waitCount(bob, 'Ping 2', 1);
    assert.deepEqual(await texts(bob), before);
    await shot(bob, 'chat-reload-desktop');

    // Enough messages for more than one page of history (50).
    const chatUrl = alice.url();
    const convId = new URL(chatUrl).pathname.split('/')[2];
    // Alice waits on the chat list, so that her open chat does not read them.
    await alice.getByRole('link', { name: 'Back' }).click();
    await visible(alice.getByRole('link', { name: new RegExp(`^${BOB.name}, Ping 2`) }));
    const more = Array.from({ length: 60 }, (_, i) => `History ${i + 1}`);
    const sent = [];
    for (let i = 0; i < more.length; i++) {
      sent.push((await call('POST', `/v1/conversations/${convId}/messages`, i % 2 ? tokens.bob : tokens.alice, { client_id: `h${i}`, text: more[i] })).message);
    }
    // Alice read up to History 11 on another device: the chat, opened
    // afresh, starts at its unread mark, right at the top of the newest
    // page, so the top is in view from the first paint and never scrolls
    // into it.
    await call('POST', `/v1/conversations/${convId}/read`, tokens.alice, { message_id: sent[10].id });
    await alice.goto(chatUrl);
    await waitCount(alice, 'History 60', 1);
    // The chat opens where her reading stopped, and it began with the
    // newest page alone. (Whether the oldest messages are on screen yet is
    // a race: the top is in view, so the page before is already on its way.)
    const order = await log(alice).locator('.msg-unread, .msg-body').allInnerTexts();
    const mark = order.indexOf('Unread messages');
    assert.deepEqual(order.slice(mark - 1, mark + 2), ['History 11', 'Unread messages', 'History 12']);
    const pages = () => alice.evaluate((cid) => performance.getEntriesByType('resource')
      .map((e) => new URL(e.name))
      .filter((u) => u.pathname === `/v1/conversations/${cid}/messages`)
      .map((u) => u.searchParams.get('before')), convId);
    assert.equal((await pages())[0], null);
    // Scrolling up as a reader does, until the chat says it begins there:
    // the last page that shows the oldest message may still be a full one,
    // and only the next look up finds nothing older.
    const beginning = alice.getByText(`This is the beginning of your chat with ${BOB.name}.`);
    for (let i = 0; i < 30 && !(await beginning.isVisible()); i++) {
      await log(alice).locator('.msg-row').first().scrollIntoViewIfNeeded();
      await alice.evaluate(() => { document.querySelector('.chat-scroll').scrollTop = 0; });
      await alice.waitForTimeout(400);
    }
    if (!(await beginning.isVisible())) {
      // What the reader sees at the top, and what the page asked for: the
      // clue when this fails (it has, now and then, only in full CI runs).
      const top = await alice.evaluate(() => document.querySelector('.chat-scroll')?.innerText.slice(0, 300));
      const rows = await log(alice).locator('.msg-row').count();
      const reqs = await alice.evaluate(() => performance.getEntriesByType('resource')
        .map((e) => `${e.name.replace(location.origin, '')} ${e.responseStatus ?? ''} ${Math.round(e.duration)}ms`)
        .filter((u) => u.includes('/messages')));
      console.log(`history top not reached: ${rows} rows; top ${JSON.stringify(top)}; requests ${JSON.stringify(reqs)}`);
    }
    await visible(beginning);
    assert.deepEqual(await texts(alice), [...before, ...more]);
    // It came in pages: every one after the first asked for older ones.
    const asked = await pages();
    assert.ok(asked.length >= 2 && asked.slice(1).every((b) => b !== null), JSON.stringify(asked));
    // An older page lands above what the reader looks at, which stays put:
    // one more scroll up shows where the chat begins.
    await beginning.scrollIntoViewIfNeeded();
    await shot(alice, 'chat-history-top-phone');
  });

  await t.test('no script errors on any page', () => {
    assert.deepEqual(errorLists.flat(), []);
  });
});
