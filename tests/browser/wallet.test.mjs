// Money in chats through the UI: a transfer card sent, seen live and accepted with balances following; a group red packet opened by all three.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, watchErrors, shot, PHONE, DESKTOP, apiCall, visible } from './harness.mjs';

let server;
let browser;
const errorLists = [];
const users = {};
const pages = {};

const PEOPLE = {
  ann: { name: 'Ann Lee', username: 'ann_pay', password: 'correct horse battery', pin: '482913' },
  ben: { name: 'Ben Ode', username: 'ben_pay', password: 'tr0ub4dor&3x pay', pin: '371920' },
  cat: { name: 'Cat Ito', username: 'cat_pay', password: 'purple monkey dishwasher', pin: '605184' },
};
const TOPUP = 10000; // $100.00
const TRANSFER = '12.34';
const PACKET_TOTAL = 600; // $6.00 in three shares

const call = (method, path, token, body) => apiCall(server, method, path, token, body);

// "$1,234.56" -> 123456, exactly: digits only, USD has two decimals.
function cents(text) {
  const m = /\$([\d,]+)\.(\d\d)/.exec(text);
  assert.ok(m, `no dollar amount in “${text}”`);
  return Number(m[1].replace(/,/g, '')) * 100 + Number(m[2]);
}

async function login(page, who) {
  await page.goto('/login');
  await page.getByLabel('Username').fill(who.username);
  await page.getByLabel('Password', { exact: true }).fill(who.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await visible(page.getByRole('navigation', { name: 'Main' }));
}

async function openWallet(page) {
  await page.goto('/me');
  await page.getByRole('link', { name: 'Wallet' }).click();
  await visible(page.getByRole('heading', { name: 'Wallet', level: 1 }));
}

function usdBalance(page) {
  return page.locator('.wallet-balance[data-currency="USD"] .wallet-balance-amount');
}

async function waitBalance(page, minor, timeout = 10000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const loc = usdBalance(page).filter({ visible: true });
    const text = (await loc.count()) ? await loc.first().innerText() : '';
    if (text && cents(text) === minor) return;
    if (Date.now() > deadline) assert.fail(`the USD balance shows “${text}”, expected ${minor} cents`);
    await page.waitForTimeout(100);
  }
}

async function openChat(page, title) {
  await page.goto('/chats');
  await page.getByRole('link', { name: new RegExp(`^${title}`) }).first().click();
  await visible(page.getByRole('heading', { name: new RegExp(`^${title}`), level: 1 }));
}

async function enterPin(page, pin) {
  const pad = page.getByRole('dialog', { name: 'Enter payment PIN' });
  await visible(pad);
  await pad.getByLabel('Payment PIN').focus();
  await page.keyboard.type(pin);
  await pad.waitFor({ state: 'detached', timeout: 10000 });
}

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  for (const [k, p] of Object.entries(PEOPLE)) {
    const r = await call('POST', '/v1/accounts', null, { username: p.username, password: p.password, display_name: p.name });
    users[k] = { id: r.user.id, token: r.token };
    await call('PUT', '/v1/wallet/pin', r.token, { pin: p.pin, password: p.password });
  }
  for (const [a, b] of [['ann', 'ben'], ['ann', 'cat'], ['ben', 'cat']]) {
    const req = await call('POST', '/v1/contacts/requests', users[a].token, { user_id: users[b].id, greeting: 'Hi' });
    await call('POST', `/v1/contacts/requests/${req.request.id}/accept`, users[b].token);
  }
  await call('POST', '/v1/wallet/topups', users.ann.token, { amount: TOPUP, currency: 'USD', idempotency_key: 'setup-ann' });
  await call('POST', '/v1/conversations', users.ann.token, { type: 'direct', user_id: users.ben.id });
  await call('POST', '/v1/conversations', users.ann.token, { type: 'group', title: 'Trip fund', member_ids: [users.ben.id, users.cat.id] });

  const devices = { ann: PHONE, ben: DESKTOP, cat: PHONE };
  for (const k of Object.keys(PEOPLE)) {
    const ctx = await browser.newContext({ ...devices[k], baseURL: server.url });
    pages[k] = await ctx.newPage();
    errorLists.push(watchErrors(pages[k], k));
    await login(pages[k], PEOPLE[k]);
  }
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('a transfer in a direct chat', { timeout: 120000 }, async (t) => {
  const ann = pages.ann;
  const ben = pages.ben;
  // A second tab of Ann's keeps her wallet open: it must follow on its own.
  const annWallet = await ann.context().newPage();
  errorLists.push(watchErrors(annWallet, 'ann-wallet'));
  await annWallet.goto('/me/wallet');
  await waitBalance(annWallet, TOPUP);

  await t.test('Ann sends money from the chat’s + panel', async () => {
    await openChat(ann, PEOPLE.ben.name);
    await openChat(ben, PEOPLE.ann.name);
    await ann.getByRole('button', { name: 'More: photo, file, money' }).click();
    await ann.getByRole('button', { name: 'Send money' }).click();
    const sheet = ann.getByRole('dialog', { name: 'Send money' });
    await visible(sheet);
    // More digits than cents is refused before anything is sent.
    await sheet.getByLabel('Amount').fill('12.345');
    await sheet.getByRole('button', { name: 'Transfer' }).click();
    await visible(sheet.getByText('At most 2 digits after the point.'));
    await sheet.getByLabel('Amount').fill(TRANSFER);
    await sheet.getByLabel('Note (optional)').fill('Concert tickets');
    await shot(ann, 'wallet-send-money-phone');
    await sheet.getByRole('button', { name: 'Transfer' }).click();
    await visible(ann.getByRole('dialog', { name: 'Enter payment PIN' }).getByText('$12.34'));
    await shot(ann, 'wallet-pin-phone');
    await enterPin(ann, PEOPLE.ann.pin);
    await visible(ann.getByRole('button', { name: /^Transfer \$12\.34, Concert tickets: Pending$/ }));
    await waitBalance(annWallet, TOPUP - 1234);
    await shot(ann, 'wallet-transfer-sent-phone');
  });

  await t.test('Ben sees the card live and accepts it; both sides show it', async () => {
    const card = ben.getByRole('button', { name: /^Transfer \$12\.34, Concert tickets: Pending$/ });
    await visible(card);
    await shot(ben, 'wallet-transfer-received-desktop');
    await card.click();
    const sheet = ben.getByRole('dialog', { name: 'Transfer' });
    await visible(sheet.getByText(`${PEOPLE.ann.name} sent you money.`, { exact: false }));
    await sheet.getByRole('button', { name: 'Accept' }).click();
    await sheet.waitFor({ state: 'detached' });
    await visible(ben.getByRole('button', { name: /^Transfer \$12\.34, Concert tickets: Accepted$/ }));
    // Ann's card turns without a reload.
    await visible(ann.getByRole('button', { name: /^Transfer \$12\.34, Concert tickets: Accepted$/ }));
    await shot(ann, 'wallet-transfer-accepted-phone');
    await openWallet(ben);
    await waitBalance(ben, 1234);
    await shot(ben, 'wallet-desktop');
    await openWallet(ann);
    await waitBalance(ann, TOPUP - 1234);
    await shot(ann, 'wallet-phone');
    // On a phone a setting's words wrap rather than trail off.
    const setting = ann.locator('.row-setting');
    await visible(setting.getByText('Accept transfers automatically'));
    const cut = await setting.locator('.row-title, .row-sub').evaluateAll((els) => els.filter((e) => e.scrollWidth > e.clientWidth).length);
    assert.equal(cut, 0);
  });

  await t.test('the history lists the transfer on both sides', async () => {
    await ben.getByRole('link', { name: 'Transactions' }).click();
    await visible(ben.locator('.tx-row', { hasText: 'Transfer received' }).filter({ hasText: '+$12.34' }));
    await annWallet.close();
  });
});

test('a red packet in a group of three', { timeout: 120000 }, async (t) => {
  const shown = {};
  await t.test('Ann sends three random shares', async () => {
    const ann = pages.ann;
    await openChat(ann, 'Trip fund');
    await ann.getByRole('button', { name: 'More: photo, file, money' }).click();
    await ann.getByRole('button', { name: 'Red packet' }).click();
    const sheet = ann.getByRole('dialog', { name: 'Red packet' });
    await sheet.getByLabel('Number of red packets').fill('3');
    await sheet.getByLabel('Total').fill('6');
    await sheet.getByLabel('Greeting').fill('Happy holidays');
    await shot(ann, 'wallet-red-packet-form-phone');
    await sheet.getByRole('button', { name: 'Prepare red packet' }).click();
    await enterPin(ann, PEOPLE.ann.pin);
    await visible(ann.getByRole('button', { name: /^Red packet: Happy holidays/ }));
    await shot(ann, 'wallet-red-packet-sent-phone');
  });

  for (const k of ['ben', 'cat', 'ann']) {
    await t.test(`${PEOPLE[k].name} opens it`, async () => {
      const page = pages[k];
      if (k !== 'ann') await openChat(page, 'Trip fund');
      const card = page.getByRole('button', { name: /^Red packet: Happy holidays/ });
      await visible(card);
      await card.click();
      await visible(page.getByRole('dialog', { name: `${PEOPLE.ann.name}’s red packet` }));
      if (k === 'ben') await shot(page, 'wallet-envelope-desktop');
      await page.getByRole('button', { name: 'Open', exact: true }).click();
      const details = page.getByRole('dialog', { name: 'Red packet' });
      await visible(details.locator('.packet-detail-mine'));
      shown[k] = cents(await details.locator('.packet-detail-mine').innerText());
      assert.ok(shown[k] >= 1, `${k} got at least a cent`);
      if (k === 'ann') {
        // The last one sees the whole packet: three claims and the luckiest.
        await visible(details.getByText('3/3 opened', { exact: false }));
        const claims = details.getByRole('list', { name: 'Who opened it' }).getByRole('listitem');
        assert.equal(await claims.count(), 3);
        await visible(details.getByText('Luckiest'));
        await shot(page, 'wallet-red-packet-details-phone');
      }
      await details.getByRole('button', { name: 'Close' }).click();
      await visible(page.getByRole('button', { name: /^Red packet: Happy holidays, Opened$/ }));
    });
  }

  await t.test('the amounts shown add up to the total', () => {
    assert.equal(shown.ben + shown.cat + shown.ann, PACKET_TOTAL, JSON.stringify(shown));
  });

  await t.test('the pages ran without errors', () => {
    assert.deepEqual(errorLists.flat(), []);
  });
});
