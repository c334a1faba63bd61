// Two people, one on a phone and one on a desktop, sign up, become contacts, manage devices and log out, against the real plazad.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, watchErrors, shot, PHONE, DESKTOP } from './harness.mjs';

// Requests are polled every 15 s; allow two rounds for a change made by the other person.
const POLL_WAIT = 35000;

let server;
let browser;
let alice; // phone
let bob; // desktop
const errorLists = []; // one list per page, filled by watchErrors

const ALICE = { name: 'Alice Wong', username: 'alice_w', password: 'correct horse battery' };
const BOB = { name: 'Bob Stone', username: 'bob_stone', password: 'tr0ub4dor&3x' };

async function visible(locator, timeout = 10000) {
  await locator.filter({ visible: true }).first().waitFor({ state: 'visible', timeout });
}

function nav(page) {
  return page.getByRole('navigation', { name: 'Main' });
}

function tab(page, name) {
  return nav(page).getByRole('link', { name: new RegExp(`^${name}\\s*($|,)`) });
}

async function register(page, who) {
  await page.getByRole('link', { name: 'Create account' }).click();
  await page.getByLabel('Name', { exact: true }).fill(who.name);
  await page.getByLabel('Username').fill(who.username);
  await page.getByLabel('Password', { exact: true }).fill(who.password);
  await page.getByRole('button', { name: 'Create account' }).click();
}

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  const ctxA = await browser.newContext({ ...PHONE, baseURL: server.url });
  const ctxB = await browser.newContext({ ...DESKTOP, baseURL: server.url });
  alice = await ctxA.newPage();
  bob = await ctxB.newPage();
  errorLists.push(watchErrors(alice, 'alice'), watchErrors(bob, 'bob'));
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('two people become contacts on phone and desktop', { timeout: 300000 }, async (t) => {
  await t.test('the welcome screen offers sign-up and log-in', async () => {
    for (const [page, size] of [[alice, 'phone'], [bob, 'desktop']]) {
      await page.goto('/');
      await visible(page.getByRole('heading', { name: 'Plaza' }));
      await visible(page.getByRole('link', { name: 'Create account' }));
      await visible(page.getByRole('link', { name: 'Log in' }));
      await shot(page, `welcome-${size}`);
    }
  });

  await t.test('sign-up checks the username and password rules before sending', async () => {
    await alice.getByRole('link', { name: 'Create account' }).click();
    await visible(alice.getByRole('heading', { name: 'Create your account' }));
    await shot(alice, 'register-phone');
    await alice.getByLabel('Name', { exact: true }).fill(ALICE.name);
    await alice.getByLabel('Username').fill('Al-1');
    await alice.getByLabel('Password', { exact: true }).fill('short');
    await alice.getByRole('button', { name: 'Create account' }).click();
    // Usernames are folded to lower case as typed, like the server does.
    assert.equal(await alice.getByLabel('Username').inputValue(), 'al-1');
    await visible(alice.getByText('Use only letters a–z, digits and _.'));
    await visible(alice.getByText('At least 8 characters.', { exact: true }));
    await alice.getByLabel('Username').fill('al');
    await visible(alice.getByText('At least 3 characters.'));
    await shot(alice, 'register-errors-phone');
    // Nothing was sent: still on the form.
    assert.equal(new URL(alice.url()).pathname, '/register');
  });

  await t.test('Alice signs up on her phone and lands on an empty Chats tab', async () => {
    await alice.getByLabel('Username').fill(ALICE.username.toUpperCase());
    await alice.getByLabel('Password', { exact: true }).fill(ALICE.password);
    await alice.getByRole('button', { name: 'Create account' }).click();
    await visible(alice.getByText('No chats yet'));
    for (const name of ['Chats', 'Contacts', 'Discover', 'Me']) await visible(tab(alice, name));
    assert.equal(await tab(alice, 'Chats').getAttribute('aria-current'), 'page');
    await shot(alice, 'chats-phone');
  });

  await t.test('a taken username shows the server’s message on the field', async () => {
    await bob.getByRole('link', { name: 'Create account' }).click();
    await bob.getByLabel('Name', { exact: true }).fill(BOB.name);
    await bob.getByLabel('Username').fill(ALICE.username);
    await bob.getByLabel('Password', { exact: true }).fill(BOB.password);
    await bob.getByRole('button', { name: 'Create account' }).click();
    await visible(bob.getByText(/taken/i));
    assert.equal(await bob.getByLabel('Username').getAttribute('aria-invalid'), 'true');
    await shot(bob, 'register-taken-desktop');
  });

  await t.test('Bob signs up on his desktop', async () => {
    await bob.getByLabel('Username').fill(BOB.username);
    await bob.getByRole('button', { name: 'Create account' }).click();
    await visible(bob.getByText('No chats yet'));
    await visible(nav(bob).getByText(`@${BOB.username}`));
    await shot(bob, 'chats-desktop');
  });

  await t.test('Alice finds Bob by username prefix and sends a friend request', async () => {
    await tab(alice, 'Contacts').click();
    await visible(alice.getByText('No contacts yet'));
    await shot(alice, 'contacts-empty-phone');
    await alice.getByRole('link', { name: 'Add friends' }).first().click();
    await alice.getByRole('searchbox', { name: 'Search by username' }).fill('bob');
    const result = alice.getByRole('link', { name: new RegExp(`${BOB.name}.*@${BOB.username}`) });
    await visible(result);
    await shot(alice, 'search-phone');
    await result.click();
    await visible(alice.getByRole('heading', { name: BOB.name }));
    const greeting = alice.getByLabel('Greeting');
    assert.equal(await greeting.inputValue(), `Hi, I'm ${ALICE.name}`);
    await shot(alice, 'profile-stranger-phone');
    await alice.getByRole('button', { name: 'Send friend request' }).click();
    await visible(alice.getByText('Request sent.'));
    await shot(alice, 'request-sent-phone');
  });

  await t.test('Bob sees a badge on Contacts and accepts the request', async () => {
    const contacts = tab(bob, 'Contacts');
    await visible(nav(bob).getByRole('link', { name: /Contacts.*1 new friend request/ }), POLL_WAIT);
    await visible(contacts.getByText('1', { exact: true }));
    await contacts.click();
    await bob.getByRole('link', { name: /New friends/ }).click();
    await visible(bob.getByText(`Hi, I'm ${ALICE.name}`));
    await shot(bob, 'new-friends-desktop');
    await bob.getByRole('button', { name: `Accept ${ALICE.name}` }).click();
    await visible(bob.getByRole('link', { name: new RegExp(`${ALICE.name}.*@${ALICE.username}`) }));
    await visible(bob.getByText('No friend requests'));
    // The badge goes away once nothing is pending.
    await visible(nav(bob).getByRole('link', { name: /^Contacts$/ }));
    await shot(bob, 'contacts-desktop');
  });

  await t.test('Alice sees Bob in her contacts', async () => {
    await alice.getByRole('link', { name: 'Back' }).click();
    await visible(alice.getByRole('link', { name: new RegExp(`${BOB.name}.*@${BOB.username}`) }), POLL_WAIT);
    await shot(alice, 'contacts-phone');
  });

  await t.test('reloading keeps Alice logged in', async () => {
    await alice.reload();
    await visible(alice.getByRole('link', { name: new RegExp(`${BOB.name}.*@${BOB.username}`) }));
    await visible(tab(alice, 'Contacts'));
    await alice.getByRole('link', { name: new RegExp(`${BOB.name}.*@${BOB.username}`) }).click();
    await visible(alice.getByRole('heading', { name: BOB.name }));
    await visible(alice.getByRole('button', { name: 'Remove contact' }));
    await visible(alice.getByRole('button', { name: 'Block' }));
    await shot(alice, 'contact-phone');
  });

  await t.test('Discover shows what is coming on both sizes', async () => {
    await alice.getByRole('link', { name: 'Back' }).click();
    for (const [page, size] of [[alice, 'phone'], [bob, 'desktop']]) {
      await tab(page, 'Discover').click();
      for (const name of ['Moments', 'Scan', 'Mini Programs']) await visible(page.getByRole('link', { name: new RegExp(name) }));
      await shot(page, `discover-${size}`);
      await page.getByRole('link', { name: /Moments/ }).click();
      await visible(page.getByText('Coming soon'));
      await shot(page, `moments-${size}`);
    }
  });

  await t.test('Alice edits her profile', async () => {
    await alice.getByRole('link', { name: 'Back' }).click();
    await tab(alice, 'Me').click();
    await visible(alice.getByText(`Username: ${ALICE.username}`));
    await shot(alice, 'me-phone');
    await alice.getByRole('link', { name: 'Profile' }).first().click();
    await alice.getByLabel('Name', { exact: true }).fill('Alice W.');
    await alice.getByLabel('Bio').fill('Coffee first, then code.');
    await shot(alice, 'profile-edit-phone');
    await alice.getByRole('button', { name: 'Save' }).click();
    await visible(alice.getByText('Profile saved'));
    await alice.getByRole('link', { name: 'Back' }).click();
    await visible(alice.getByRole('link', { name: /Alice W\..*Coffee first, then code\./ }));
  });

  await t.test('Bob logs out another device from Devices', async () => {
    const ctx = await browser.newContext({ ...PHONE, baseURL: server.url });
    const bobPhone = await ctx.newPage();
    errorLists.push(watchErrors(bobPhone, 'bob-phone'));
    await bobPhone.goto('/login');
    await bobPhone.getByLabel('Username').fill(BOB.username);
    await bobPhone.getByLabel('Password', { exact: true }).fill(BOB.password);
    await bobPhone.getByRole('button', { name: 'Log in' }).click();
    await visible(bobPhone.getByText('No chats yet'));

    await tab(bob, 'Me').click();
    await bob.getByRole('link', { name: 'Devices' }).click();
    await visible(bob.getByText('This device', { exact: true }).last());
    await visible(bob.getByText('Chrome on Android'));
    await shot(bob, 'devices-desktop');
    await bob.getByRole('button', { name: 'Log out Chrome on Android' }).click();
    await bob.getByRole('dialog').getByRole('button', { name: 'Log out' }).click();
    await visible(bob.getByText('You are not logged in anywhere else.'));

    // The revoked phone is sent back to log in, by the event link closing
    // (4001) or at the latest by its next request.
    await visible(bobPhone.getByText('Your session has ended. Log in again to continue.'), POLL_WAIT);
    await visible(bobPhone.getByRole('button', { name: 'Log in' }));
    assert.equal(await bobPhone.getByLabel('Username').inputValue(), BOB.username);
    await shot(bobPhone, 'session-ended-phone');
    await ctx.close();
  });

  await t.test('a block stops new requests and the server’s reason is shown inline', async () => {
    await tab(bob, 'Contacts').click();
    // Alice renamed herself above; her username is what stays.
    await bob.getByRole('link', { name: new RegExp(`@${ALICE.username}`) }).click();
    await bob.getByRole('button', { name: 'Block' }).click();
    await bob.getByRole('dialog').getByRole('button', { name: 'Block' }).click();
    await visible(bob.getByText(/You blocked/));
    await visible(bob.getByText('No contacts yet'));
    await shot(bob, 'blocked-desktop');

    await tab(alice, 'Contacts').click();
    await alice.getByRole('link', { name: 'Add friends' }).first().click();
    await alice.getByRole('searchbox', { name: 'Search by username' }).fill('bob_');
    await alice.getByRole('link', { name: new RegExp(BOB.name) }).click();
    await alice.getByRole('button', { name: 'Send friend request' }).click();
    const alert = alice.getByRole('alert');
    await visible(alert);
    assert.ok((await alert.first().innerText()).trim().length > 0, 'the error has a message');
    assert.equal(await alice.getByText('Request sent.').count(), 0);
    await shot(alice, 'request-refused-phone');
  });

  await t.test('logging out returns to the welcome screen and stays there', async () => {
    await alice.getByRole('link', { name: 'Back' }).click();
    await tab(alice, 'Me').click();
    await alice.getByRole('button', { name: 'Log out' }).click();
    await shot(alice, 'logout-confirm-phone');
    await alice.getByRole('dialog').getByRole('button', { name: 'Log out' }).click();
    await visible(alice.getByRole('link', { name: 'Create account' }));
    await alice.reload();
    await visible(alice.getByRole('link', { name: 'Create account' }));
    assert.equal(await nav(alice).count(), 0);
  });

  await t.test('a wrong password shows the server’s message, the right one logs in', async () => {
    await alice.getByRole('link', { name: 'Log in' }).click();
    await alice.getByLabel('Username').fill(ALICE.username);
    await alice.getByLabel('Password', { exact: true }).fill('not my password');
    await alice.getByRole('button', { name: 'Log in' }).click();
    const alert = alice.getByRole('alert');
    await visible(alert);
    assert.ok((await alert.first().innerText()).trim().length > 0);
    await shot(alice, 'login-error-phone');
    await alice.getByLabel('Password', { exact: true }).fill(ALICE.password);
    await alice.getByRole('button', { name: 'Log in' }).click();
    await visible(alice.getByText('No chats yet'));
  });

  await t.test('no script errors on any page', () => {
    assert.deepEqual(errorLists.flat(), []);
  });
});
