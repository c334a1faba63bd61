// What people do in a chat besides sending text: reply, react, edit, recall, delete, typing, receipts, photos, and groups with invites.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startServer, launchBrowser, watchErrors, shot, PHONE, DESKTOP, ROOT, apiCall, visible } from './harness.mjs';

let server;
let browser;
let alice; // phone
let bob; // desktop
const bobSent = []; // the text frames Bob's page sent on its sockets
let carol; // phone, joins the group by its link
const errorLists = [];
const tokens = {};

const ALICE = { name: 'Alice Wong', username: 'alice_f', password: 'correct horse battery' };
const BOB = { name: 'Bob Stone', username: 'bob_f', password: 'tr0ub4dor&3x' };
const CAROL = { name: 'Carol Diaz', username: 'carol_f', password: 'purple monkey dishwasher' };
const DAN = { name: 'Dan Wu', username: 'dan_f', password: 'not on a browser' };

const call = (method, path, token, body) => apiCall(server, method, path, token, body);

async function gone(locator, timeout = 10000) {
  await locator.first().waitFor({ state: 'detached', timeout });
}

const nav = (page) => page.getByRole('navigation', { name: 'Main' });
const log = (page) => page.getByRole('log', { name: 'Messages' });
const composer = (page) => page.getByRole('textbox', { name: 'Message' });
// The row of the message whose text is exactly text.
const message = (page, text) => log(page).locator('.msg-row').filter({ has: page.locator('.msg-body', { hasText: new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) }) });

// A member's row on the group info page.
const member = (page, who) => page.locator('.member-row', { has: page.getByRole('link', { name: new RegExp(`^${who.name}`) }) });

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
  await visible(message(page, text));
}

// The message menu: right click on a desktop, a long press (contextmenu) on a phone.
async function menuFor(page, text) {
  await message(page, text).locator('.bubble').dispatchEvent('contextmenu');
  const menu = page.getByRole('menu', { name: 'Message actions' });
  await visible(menu);
  return menu;
}

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  for (const [key, who] of [['alice', ALICE], ['bob', BOB], ['carol', CAROL], ['dan', DAN]]) {
    const r = await call('POST', '/v1/accounts', null, { username: who.username, password: who.password, display_name: who.name });
    tokens[key] = r.token;
    who.id = r.user.id;
  }
  for (const [x, y, yKey] of [['alice', BOB, 'bob'], ['bob', CAROL, 'carol'], ['bob', DAN, 'dan']]) {
    const req = await call('POST', '/v1/contacts/requests', tokens[x], { user_id: y.id, greeting: 'Hi' });
    await call('POST', `/v1/contacts/requests/${req.request.id}/accept`, tokens[yKey]);
  }
  const ctxA = await browser.newContext({ ...PHONE, baseURL: server.url });
  const ctxB = await browser.newContext({ ...DESKTOP, baseURL: server.url, permissions: ['clipboard-read', 'clipboard-write'] });
  const ctxC = await browser.newContext({ ...PHONE, baseURL: server.url });
  alice = await ctxA.newPage();
  bob = await ctxB.newPage();
  bob.on('websocket', (ws) => ws.on('framesent', (f) => { if (typeof f.payload === 'string') bobSent.push(f.payload); }));
  carol = await ctxC.newPage();
  errorLists.push(watchErrors(alice, 'alice'), watchErrors(bob, 'bob'), watchErrors(carol, 'carol'));
  await login(alice, ALICE);
  await login(bob, BOB);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('message actions, receipts and typing in a direct chat', { timeout: 300000 }, async (t) => {
  await t.test('Bob starts a chat from the + menu', async () => {
    await bob.getByRole('button', { name: 'New chat or group' }).click();
    await bob.getByRole('menuitem', { name: 'New chat' }).click();
    await bob.getByRole('button', { name: new RegExp(ALICE.name) }).click();
    await visible(bob.getByRole('heading', { name: ALICE.name, level: 1 }));
    await sendText(bob, 'Morning! Coffee at 9?');
    await visible(alice.getByRole('link', { name: new RegExp(`^${BOB.name}, 1 unread message, Morning! Coffee at 9\\?`) }));
    await alice.getByRole('link', { name: new RegExp(`^${BOB.name}`) }).click();
    await visible(message(alice, 'Morning! Coffee at 9?'));
  });

  await t.test('Bob sees Sent, then Read once Alice has the chat open', async () => {
    await visible(message(bob, 'Morning! Coffee at 9?').and(bob.locator('[data-state="read"]')));
    await visible(message(bob, 'Morning! Coffee at 9?').getByText('Read'));
  });

  await t.test('typing shows in the other’s header', async () => {
    await composer(alice).pressSequentially('Sure, see y', { delay: 20 });
    await visible(bob.locator('.chat-sub', { hasText: 'typing…' }));
    await shot(bob, 'chat-typing-desktop');
    await composer(alice).pressSequentially('ou there', { delay: 10 });
    await composer(alice).press('Enter');
    await visible(message(bob, 'Sure, see you there'));
    // The message ends the typing.
    await visible(bob.locator('.chat-sub', { hasText: 'online' }));
  });

  await t.test('a chat open on screen is marked read, without a delivered receipt besides', async () => {
    // Read moves the delivered marker too: a second receipt would only
    // cost the server a write (and every member an event).
    const mark = bobSent.length;
    await sendText(alice, 'Bring cash?');
    await visible(message(alice, 'Bring cash?').and(alice.locator('[data-state="read"]')));
    await bob.waitForTimeout(700); // past the 200 ms a delivered receipt waits for more messages
    const frames = bobSent.slice(mark).map((x) => JSON.parse(x));
    assert.deepEqual(frames.filter((f) => f.type === 'delivered'), []);
  });

  await t.test('a reply quotes the message it answers', async () => {
    const menu = await menuFor(bob, 'Sure, see you there');
    await shot(bob, 'chat-menu-desktop');
    await menu.getByRole('menuitem', { name: 'Reply' }).click();
    await visible(bob.getByText(`Reply to ${ALICE.name}`));
    await sendText(bob, 'Great, I will book a table');
    for (const page of [alice, bob]) {
      const row = message(page, 'Great, I will book a table');
      await visible(row);
      await visible(row.locator('.msg-quote', { hasText: 'Sure, see you there' }));
    }
  });

  await t.test('a reaction from the phone’s long-press menu shows on both sides', async () => {
    const menu = await menuFor(alice, 'Great, I will book a table');
    await shot(alice, 'chat-menu-phone');
    await menu.getByRole('menuitem', { name: 'React ❤️' }).click();
    for (const page of [alice, bob]) {
      await visible(message(page, 'Great, I will book a table').getByRole('button', { name: new RegExp(`^❤️ 1: ${page === alice ? 'You' : ALICE.name}$`) }));
    }
    // Tapping one's own reaction takes it back.
    await message(alice, 'Great, I will book a table').getByRole('button', { name: /^❤️ 1/ }).click();
    await gone(message(bob, 'Great, I will book a table').getByRole('button', { name: /^❤️/ }));
  });

  await t.test('Bob edits his message; Alice sees the new text marked edited', async () => {
    const menu = await menuFor(bob, 'Morning! Coffee at 9?');
    await menu.getByRole('menuitem', { name: 'Edit' }).click();
    await visible(bob.getByText('Edit message'));
    assert.equal(await composer(bob).inputValue(), 'Morning! Coffee at 9?');
    await composer(bob).fill('Morning! Coffee at 9:30?');
    await composer(bob).press('Enter');
    const row = message(alice, 'Morning! Coffee at 9:30?');
    await visible(row);
    await visible(row.getByText('edited'));
    assert.equal(await message(alice, 'Morning! Coffee at 9?').count(), 0);
    // The quote of the reply follows the edit too.
    await shot(alice, 'chat-edited-phone');
  });

  await t.test('Bob recalls a message: both see that he did, the list too', async () => {
    await sendText(bob, 'Oops, wrong chat');
    await visible(message(alice, 'Oops, wrong chat'));
    const menu = await menuFor(bob, 'Oops, wrong chat');
    await menu.getByRole('menuitem', { name: 'Recall' }).click();
    await visible(log(bob).getByText('You recalled a message'));
    await visible(log(alice).getByText(`${BOB.name} recalled a message`));
    assert.equal(await message(alice, 'Oops, wrong chat').count(), 0);
    await visible(bob.getByRole('link', { name: new RegExp(`^${ALICE.name}, You recalled a message`) }));
    await shot(bob, 'chat-recalled-desktop');
  });

  await t.test('Alice deletes a message for herself only', async () => {
    const menu = await menuFor(alice, 'Sure, see you there');
    await menu.getByRole('menuitem', { name: 'Delete' }).click();
    await alice.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
    await gone(message(alice, 'Sure, see you there'));
    await alice.reload();
    await visible(message(alice, 'Great, I will book a table'));
    assert.equal(await message(alice, 'Sure, see you there').count(), 0);
    assert.equal(await message(bob, 'Sure, see you there').count(), 1);
  });

  await t.test('a photo is sent with a preview and shown to the other from the server', async () => {
    await alice.locator('input[type="file"]').setInputFiles(path.join(ROOT, 'web/icons/icon-192.png'));
    const mine = log(alice).locator('.msg-row.mine').last();
    await visible(mine.locator('img.msg-img'));
    await visible(log(alice).locator('.msg-row.mine[data-state="read"], .msg-row.mine[data-state="delivered"], .msg-row.mine[data-state="sent"]').last().locator('img.msg-img'));
    const img = log(bob).locator('.msg-row.theirs img.msg-img').last();
    await visible(img);
    await bob.waitForFunction((el) => el.complete && el.naturalWidth > 0 && el.src.startsWith('blob:'), await img.elementHandle());
    await visible(bob.getByRole('link', { name: new RegExp(`^${ALICE.name}, \\[Image\\]`) }));
    await shot(bob, 'chat-photo-desktop');
    await img.click();
    await visible(bob.locator('dialog.lightbox img[src^="blob:"]'));
    await bob.keyboard.press('Escape');
  });
});

test('a group: create, talk, rename, invite by link and QR code, remove, leave', { timeout: 300000 }, async (t) => {
  let inviteUrl;

  await t.test('Bob creates a group with Alice', async () => {
    await bob.getByRole('button', { name: 'New chat or group' }).click();
    await bob.getByRole('menuitem', { name: 'New group' }).click();
    await bob.getByLabel('Group name').fill('Climbing club');
    await bob.getByRole('checkbox', { name: new RegExp(ALICE.name) }).check();
    await shot(bob, 'group-new-desktop');
    await bob.getByRole('button', { name: 'Create' }).click();
    await visible(bob.getByRole('heading', { name: /Climbing club/, level: 1 }));
    await sendText(bob, 'Welcome to the club!');
    await alice.getByRole('link', { name: 'Back' }).click();
    const row = alice.getByRole('link', { name: /^Climbing club, 1 unread message, Bob Stone: Welcome to the club!/ });
    await visible(row);
    await shot(alice, 'group-list-phone');
    await row.click();
    await visible(message(alice, 'Welcome to the club!'));
    await visible(message(alice, 'Welcome to the club!').getByText(BOB.name));
    await sendText(alice, 'Thanks!');
    await visible(message(bob, 'Thanks!'));
    await shot(alice, 'group-chat-phone');
  });

  await t.test('the group info lists members and roles; Bob renames the group', async () => {
    await bob.getByRole('link', { name: 'Group info' }).click();
    await visible(bob.getByRole('heading', { name: 'Group info' }));
    await visible(member(bob, BOB).getByText('Owner'));
    await visible(member(bob, BOB).getByRole('link', { name: `${BOB.name} (you)` }));
    await visible(member(bob, ALICE).getByRole('button', { name: `Make admin: ${ALICE.name}` }));
    await bob.getByRole('button', { name: 'Rename group' }).click();
    await bob.getByLabel('Group name').fill('Climbing club 🧗');
    await bob.getByRole('button', { name: 'Save' }).click();
    await visible(bob.getByRole('heading', { name: 'Climbing club 🧗', level: 2 }));
    await visible(alice.getByRole('heading', { name: /Climbing club 🧗/, level: 1 }));
    await visible(log(alice).getByText(/renamed the group/));
  });

  await t.test('the owner makes Alice an admin and adds Dan from his contacts', async () => {
    await member(bob, ALICE).getByRole('button', { name: `Make admin: ${ALICE.name}` }).click();
    await visible(member(bob, ALICE).getByText('Admin', { exact: true }));
    await visible(member(bob, ALICE).getByRole('button', { name: `Remove admin: ${ALICE.name}` }));
    await bob.getByRole('button', { name: 'Add members' }).click();
    // Members already in the group are not offered.
    assert.equal(await bob.getByRole('checkbox', { name: new RegExp(ALICE.name) }).count(), 0);
    await bob.getByRole('checkbox', { name: new RegExp(DAN.name) }).check();
    await bob.getByRole('button', { name: 'Add', exact: true }).click();
    await visible(member(bob, DAN));
    await visible(alice.getByRole('heading', { name: /\(3\)/, level: 1 }));
    await visible(log(alice).getByText(new RegExp(`added ${DAN.name}`)));
  });

  await t.test('an invite link with its QR code lets Carol join', async () => {
    await bob.getByRole('button', { name: /Invite via link/ }).click();
    const link = bob.getByRole('textbox', { name: 'Invite link' });
    await visible(link);
    inviteUrl = await link.inputValue();
    assert.match(inviteUrl, new RegExp(`^${server.url}/join/[A-Za-z0-9_-]+$`));
    const qr = bob.getByRole('img', { name: /QR code to join/ });
    await visible(qr);
    await bob.waitForFunction((el) => el.complete && el.naturalWidth > 0, await qr.elementHandle());
    await shot(bob, 'group-invite-desktop');

    // Carol opens the link before logging in, and lands on it afterwards.
    await carol.goto(inviteUrl);
    await visible(carol.getByRole('link', { name: 'Log in' }));
    await carol.getByRole('link', { name: 'Log in' }).click();
    await carol.getByLabel('Username').fill(CAROL.username);
    await carol.getByLabel('Password', { exact: true }).fill(CAROL.password);
    await carol.getByRole('button', { name: 'Log in' }).click();
    await visible(carol.getByRole('heading', { name: 'Climbing club 🧗' }));
    await visible(carol.getByText('3 members'));
    await shot(carol, 'group-join-phone');
    await carol.getByRole('button', { name: 'Join group' }).click();
    await visible(carol.getByRole('heading', { name: /Climbing club 🧗/, level: 1 }));
    await visible(log(carol).getByText(/joined/));
    await visible(member(bob, CAROL));
    await visible(alice.getByRole('heading', { name: /\(4\)/, level: 1 }));
  });

  await t.test('Bob removes Carol; she loses the group', async () => {
    await bob.getByRole('button', { name: `Remove: ${CAROL.name}` }).click();
    await bob.getByRole('dialog').getByRole('button', { name: 'Remove' }).click();
    await gone(bob.getByRole('button', { name: `Remove: ${CAROL.name}` }));
    await visible(carol.getByText('Chat not found'));
    await visible(log(alice).getByText(/removed/));
  });

  await t.test('Alice leaves; the group is gone from her list', async () => {
    await alice.getByRole('link', { name: 'Group info' }).click();
    // An admin manages members, but not the owner.
    await visible(member(alice, BOB).getByText('Owner'));
    assert.equal(await member(alice, BOB).getByRole('button').count(), 0);
    await visible(member(alice, DAN).getByRole('button', { name: `Remove: ${DAN.name}` }));
    assert.equal(await member(alice, DAN).getByRole('button', { name: /admin/ }).count(), 0);
    await shot(alice, 'group-info-phone');
    // Back to a plain member, she sees the group but manages nothing.
    await member(bob, ALICE).getByRole('button', { name: `Remove admin: ${ALICE.name}` }).click();
    await gone(alice.getByRole('button', { name: 'Rename group' }));
    assert.equal(await alice.getByRole('button', { name: /Invite via link/ }).count(), 0);
    assert.equal(await member(alice, DAN).getByRole('button').count(), 0);
    await alice.getByRole('button', { name: 'Leave group' }).click();
    await alice.getByRole('dialog').getByRole('button', { name: 'Leave' }).click();
    await visible(alice.getByRole('heading', { name: 'Chats' }));
    assert.equal(await alice.getByRole('link', { name: /^Climbing club/ }).count(), 0);
    await gone(member(bob, ALICE));
    await visible(member(bob, BOB));
  });

});

test('a message the server refuses shows a red mark, and goes out on retry', { timeout: 120000 }, async (t) => {
  await t.test('refused while Alice blocks Bob', async () => {
    await call('POST', '/v1/blocks', tokens.alice, { user_id: BOB.id });
    await nav(bob).getByRole('link', { name: /^Chats/ }).click();
    await bob.getByRole('link', { name: new RegExp(`^${ALICE.name}`) }).click();
    await sendText(bob, 'Are you there?');
    const row = message(bob, 'Are you there?');
    await visible(row.and(bob.locator('[data-state="failed"]')));
    await visible(bob.getByRole('link', { name: new RegExp(`^${ALICE.name}, Not sent: Are you there\\?`) }));
    await shot(bob, 'chat-failed-desktop');
    await row.getByRole('button', { name: /^Not sent: .*does not accept your messages/i }).click();
    const menu = bob.getByRole('menu', { name: 'Message actions' });
    await visible(menu.getByText(/does not accept your messages/i));
    // Nothing reached Alice.
    assert.equal(await alice.getByRole('link', { name: /Are you there/ }).count(), 0);

    await call('DELETE', `/v1/blocks/${BOB.id}`, tokens.alice);
    await menu.getByRole('menuitem', { name: 'Retry' }).click();
    await visible(row.and(bob.locator('[data-state="sent"], [data-state="delivered"], [data-state="read"]')));
    await visible(alice.getByRole('link', { name: new RegExp(`^${BOB.name}, 1 unread message, Are you there\\?`) }));
  });

  await t.test('no script errors on any page', () => {
    assert.deepEqual(errorLists.flat(), []);
  });
});
