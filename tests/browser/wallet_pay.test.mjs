// Paying a merchant through the UI: a merchant account opened in Me, an order paid from Discover -> Scan with the PIN pad, then history filters, CSV, limits and the statement.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { startServer, launchBrowser, watchErrors, shot, PHONE, DESKTOP, apiCall, visible } from './harness.mjs';

let server;
let browser;
const errorLists = [];
const users = {};
const pages = {};

const PEOPLE = {
  m: { name: 'Mia Shop', username: 'mia_shop', password: 'correct horse battery', pin: '482913', device: DESKTOP },
  p: { name: 'Paul Payer', username: 'paul_payer', password: 'tr0ub4dor&3x pay', pin: '371920', device: PHONE },
};
const SHOP = 'Corner Café';
const TOPUP = 10000; // $100.00
const PRICE = 1500; // $15.00
const DAILY = 50000; // tier 0's daily allowance, docs/api.md

const call = (method, path, token, body) => apiCall(server, method, path, token, body);

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

// The USD balance as the wallet screen shows it, waited for until it is `minor`.
async function walletShows(page, minor, timeout = 10000) {
  await page.goto('/me/wallet');
  const loc = page.locator('.wallet-balance[data-currency="USD"] .wallet-balance-amount').filter({ visible: true });
  const deadline = Date.now() + timeout;
  for (;;) {
    const text = (await loc.count()) ? await loc.first().innerText() : '';
    if (text && cents(text) === minor) return;
    if (Date.now() > deadline) assert.fail(`the USD balance shows “${text}”, expected ${minor} cents`);
    await page.waitForTimeout(100);
  }
}

async function enterPin(page, pin) {
  const pad = page.getByRole('dialog', { name: 'Enter payment PIN' });
  await visible(pad);
  await pad.getByLabel('Payment PIN').focus();
  await page.keyboard.type(pin);
  await pad.waitFor({ state: 'detached', timeout: 10000 });
}

async function pasteCode(page, code) {
  await page.goto('/discover');
  await page.getByRole('link', { name: /Scan/ }).click();
  await visible(page.getByRole('heading', { name: 'Scan', level: 1 }));
  await page.getByLabel('Paste a payment code').fill(code);
  await page.getByRole('button', { name: 'Continue' }).click();
}

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  for (const [k, p] of Object.entries(PEOPLE)) {
    const r = await call('POST', '/v1/accounts', null, { username: p.username, password: p.password, display_name: p.name });
    users[k] = { id: r.user.id, token: r.token };
  }
  await call('PUT', '/v1/wallet/pin', users.p.token, { pin: PEOPLE.p.pin, password: PEOPLE.p.password });
  await call('POST', '/v1/wallet/topups', users.p.token, { amount: TOPUP, currency: 'USD', idempotency_key: 'setup-p' });
  for (const k of Object.keys(PEOPLE)) {
    const ctx = await browser.newContext({ ...PEOPLE[k].device, baseURL: server.url, acceptDownloads: true });
    pages[k] = await ctx.newPage();
    errorLists.push(watchErrors(pages[k], k));
    await login(pages[k], PEOPLE[k]);
  }
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('a merchant is paid by scanning its order code', { timeout: 150000 }, async (t) => {
  const m = pages.m;
  const p = pages.p;
  let apiKey = null;
  let order = null;

  await t.test('M opens a merchant account and sees its secrets once, then the QR code', async () => {
    await m.goto('/me');
    await m.getByRole('link', { name: 'Merchant' }).click();
    await visible(m.getByRole('heading', { name: 'Get paid with a QR code' }));
    // An https webhook is refused before anything is sent.
    await m.getByLabel('Shop name').fill(SHOP);
    await m.getByLabel('Webhook URL (optional)').fill('https://shop.example.com/hook');
    await m.getByRole('button', { name: 'Open merchant account' }).click();
    await visible(m.getByText('This server sends webhooks over http:// only.'));
    await m.getByLabel('Webhook URL (optional)').fill('');
    await m.getByRole('button', { name: 'Open merchant account' }).click();
    await visible(m.getByText(/Shown only once/));
    apiKey = (await m.locator('.secret-value').first().innerText()).trim();
    assert.match(apiKey, /^pzk_/);
    assert.match((await m.locator('.secret-value').nth(1).innerText()).trim(), /^whsec_/);
    await visible(m.getByRole('button', { name: 'Copy API key' }));
    await visible(m.getByRole('button', { name: 'Copy Webhook secret' }));
    await shot(m, 'merchant-secrets-desktop');
    await m.getByRole('button', { name: 'I’ve saved them' }).click();
    const qr = m.getByRole('img', { name: `QR code to pay ${SHOP}` });
    await visible(qr);
    await m.waitForFunction(() => {
      const img = document.querySelector('.merchant-qr-img');
      return img && img.complete && img.naturalWidth > 0;
    });
    await visible(m.getByRole('link', { name: 'Save' }));
    await visible(m.getByText(/^plaza:pay\?m=\d+$/));
    await shot(m, 'merchant-page-desktop');
    // The secret is gone for good once the page was left.
    await m.reload();
    await visible(m.getByRole('img', { name: `QR code to pay ${SHOP}` }));
    assert.equal(await m.getByText(apiKey).count(), 0);
  });

  await t.test('Scan works without a camera: the paste field is always there', async () => {
    await m.goto('/discover');
    await m.getByRole('link', { name: /Scan/ }).click();
    await visible(m.getByLabel('Paste a payment code'));
    // Headless Chromium reads no QR codes: the page says so instead of offering a dead button.
    await visible(m.getByText(/Paste the payment code below instead|Scan the QR code at the counter/));
    await shot(m, 'scan-desktop');
  });

  await t.test('the shop makes an order with the key shown', async () => {
    const r = await call('POST', '/v1/merchant/orders', apiKey, {
      amount: PRICE, currency: 'USD', description: 'Two flat whites', idempotency_key: 'order-1',
    });
    order = r.order;
    assert.equal(order.status, 'pending');
  });

  await t.test('P pastes the code into Scan, pays with the PIN pad and sees success', async () => {
    await walletShows(p, TOPUP);
    await walletShows(m, 0);
    await pasteCode(p, 'not a code');
    await visible(p.getByText(/That is not a Plaza payment code/));
    await p.getByLabel('Paste a payment code').fill(order.code);
    await p.getByRole('button', { name: 'Continue' }).click();
    await visible(p.getByRole('heading', { name: SHOP }));
    await visible(p.getByText('Two flat whites'));
    await visible(p.locator('.pay-card .pay-amount').getByText('$15.00'));
    await shot(p, 'scan-pay-phone');
    await p.getByRole('button', { name: 'Pay', exact: true }).click();
    await visible(p.getByRole('dialog', { name: 'Enter payment PIN' }).getByText('$15.00'));
    // A wrong PIN keeps the sheet open with the server's message.
    const pad = p.getByRole('dialog', { name: 'Enter payment PIN' });
    await pad.getByLabel('Payment PIN').focus();
    await p.keyboard.type('000000');
    await visible(pad.getByText(/PIN/i).filter({ hasText: /wrong|incorrect|not right/i }));
    await enterPin(p, PEOPLE.p.pin);
    await visible(p.getByRole('heading', { name: 'Payment complete' }));
    await visible(p.getByText(`Paid to ${SHOP}`));
    assert.equal(cents(await p.locator('.pay-success .pay-amount').innerText()), PRICE);
    await shot(p, 'scan-paid-phone');
  });

  await t.test('both balances on screen moved by the amount', async () => {
    await walletShows(p, TOPUP - PRICE);
    await walletShows(m, PRICE);
  });

  await t.test('paying the same code again shows it was paid already', async () => {
    await pasteCode(p, order.code);
    await visible(p.getByText('This order was paid already.'));
    assert.equal(await p.getByRole('button', { name: 'Pay', exact: true }).count(), 0);
    await shot(p, 'scan-already-paid-phone');
  });

  await t.test('the limits row shows what is left today', async () => {
    await p.goto('/me/wallet');
    const left = p.locator('.limits-left').filter({ visible: true }).first();
    await visible(left);
    assert.equal(cents(await left.innerText()), DAILY - PRICE);
    await shot(p, 'wallet-home-limits-phone');
  });

  await t.test('the history filter shows only the chosen type', async () => {
    await p.goto('/me/wallet/history');
    const rows = p.locator('.tx-row').filter({ visible: true });
    await visible(rows);
    assert.deepEqual((await rows.evaluateAll((els) => els.map((e) => e.dataset.type))).sort(), ['merchant_payment', 'topup']);
    await p.getByLabel('Type').selectOption({ label: 'Payments' });
    await p.waitForFunction(() => {
      const els = [...document.querySelectorAll('.tx-row')];
      return els.length === 1 && els[0].dataset.type === 'merchant_payment';
    });
    assert.equal(cents(await rows.first().locator('.tx-amount').innerText()), PRICE);
    await shot(p, 'history-filter-phone');
    await p.getByLabel('Type').selectOption({ label: 'Top-ups' });
    await p.waitForFunction(() => {
      const els = [...document.querySelectorAll('.tx-row')];
      return els.length === 1 && els[0].dataset.type === 'topup';
    });
    await p.getByLabel('Type').selectOption({ label: 'Payments' });
    await p.waitForFunction(() => [...document.querySelectorAll('.tx-row')].every((e) => e.dataset.type === 'merchant_payment')
      && document.querySelectorAll('.tx-row').length === 1);
  });

  await t.test('the CSV download holds the payment', async () => {
    const [download] = await Promise.all([
      p.waitForEvent('download'),
      p.getByRole('button', { name: 'Download CSV' }).click(),
    ]);
    assert.match(download.suggestedFilename(), /^plaza-transactions-\d{4}-\d{2}-\d{2}\.csv$/);
    const text = await readFile(await download.path(), 'utf8');
    const lines = text.trim().split(/\r\n/);
    assert.equal(lines[0], 'date,type,amount,currency,counterparty,counterparty_name,note,transaction_id,reference_id');
    // The file follows the filter on screen: the payment only.
    assert.equal(lines.length, 2, text);
    assert.match(lines[1], /,merchant_payment,-15\.00,USD,/);
  });

  await t.test('the monthly statement adds up', async () => {
    await p.goto('/me/wallet');
    await p.getByRole('link', { name: 'Monthly statements' }).click();
    const usd = p.getByRole('region', { name: 'USD statement' });
    await visible(usd);
    const amounts = await usd.locator('dd').allInnerTexts();
    assert.deepEqual(amounts.map(cents), [0, TOPUP, PRICE, TOPUP - PRICE]);
    await visible(usd.getByText('2 transactions'));
    await shot(p, 'statement-phone');
  });

  await t.test('the pages ran without errors', () => {
    assert.deepEqual(errorLists.flat(), []);
  });
});
