// API tests of merchants: accounts and API keys, static and dynamic QR payments, refunds, idempotency, and signed webhooks checked by a merchant back end on 127.0.0.1 (retries, kill -9).
import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PASSWORD, PLAZAD, expectError, register, startServer } from './lib.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let srv;
// The shops' back ends below listen on 127.0.0.1: webhooks to private
// addresses are allowed on this server (not by default: see the last test).
const PRIVATE_OK = { PLAZA_PRIVATE_WEBHOOKS: '1' };
before(async () => { srv = await startServer({ env: PRIVATE_OK }); });
after(async () => { await srv?.stop(); });

let keyCounter = 0;
const newKey = () => `mkey-${process.pid}-${++keyCounter}`;

/**
 * Verifies a webhook exactly as docs/api.md tells merchants to: parse
 * `t=<unix seconds>,v1=<hex>`, refuse a timestamp more than 300 seconds
 * from now (a replay), compute HMAC-SHA256 with the webhook secret over
 * "<t>.<raw body>", and compare in constant time.
 */
function verifySignature(secret, header, rawBody, nowSeconds = Math.floor(Date.now() / 1000)) {
  if (typeof header !== 'string') return false;
  const parts = Object.fromEntries(header.split(',').map((kv) => {
    const i = kv.indexOf('=');
    return [kv.slice(0, i), kv.slice(i + 1)];
  }));
  const t = Number(parts.t);
  if (!/^[0-9]+$/.test(parts.t ?? '') || !/^[0-9a-f]{64}$/.test(parts.v1 ?? '')) return false;
  if (Math.abs(nowSeconds - t) > 300) return false;
  const expected = createHmac('sha256', secret).update(`${parts.t}.`).update(rawBody).digest();
  return timingSafeEqual(expected, Buffer.from(parts.v1, 'hex'));
}

/** A merchant's back end: records every delivery; answers with the queued statuses, then 200. */
async function receiver() {
  const got = [];
  const statuses = [];
  const waiters = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const status = statuses.length ? statuses.shift() : 200;
      got.push({ headers: req.headers, raw, body: JSON.parse(raw.toString('utf8')), status, method: req.method, url: req.url });
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(status === 200 ? 'ok' : 'no');
      for (const w of waiters.splice(0)) w();
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  return {
    got,
    statuses,
    url: `http://127.0.0.1:${port}/hooks/plaza?src=test`,
    port,
    /** Resolves once pred(got) holds; fails after ms. */
    async until(pred, ms = 20000) {
      const deadline = Date.now() + ms;
      while (!pred(got)) {
        if (Date.now() > deadline) throw new Error(`webhooks not as expected after ${ms} ms: ${JSON.stringify(got.map((g) => [g.body.type, g.status]))}`);
        await Promise.race([new Promise((r) => waiters.push(r)), sleep(200)]);
      }
    },
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }),
  };
}

const setPin = (s, who, pin = '123456') =>
  s.call('PUT', '/v1/wallet/pin', { token: who.token, body: { pin, password: PASSWORD } });
const topup = (s, who, amount, currency = 'USD') =>
  s.call('POST', '/v1/wallet/topups', { token: who.token, body: { amount, currency, idempotency_key: newKey() } });
const balance = async (s, who, currency = 'USD') => {
  const res = await s.call('GET', '/v1/wallet', { token: who.token });
  assert.equal(res.status, 200, res.text);
  return res.json.balances.find((b) => b.currency === currency).available;
};

async function funded(s, amount = 0) {
  const who = await register(s);
  assert.equal((await setPin(s, who)).status, 204);
  if (amount) assert.equal((await topup(s, who, amount)).status, 201);
  return who;
}

/** A user with a PIN who opened a merchant account; { owner, merchant, apiKey, secret }. */
async function openMerchant(s, { webhookUrl, name = 'Corner Café' } = {}) {
  const owner = await funded(s);
  const res = await s.call('POST', '/v1/merchants', {
    token: owner.token, body: { name, ...(webhookUrl ? { webhook_url: webhookUrl } : {}) },
  });
  assert.equal(res.status, 201, res.text);
  return { owner, merchant: res.json.merchant, apiKey: res.json.api_key, secret: res.json.webhook_secret };
}

const shop = (s, m, method, p, body) => s.call(method, p, { headers: { authorization: `Bearer ${m.apiKey}` }, body });
const newOrder = (s, m, fields = {}) => shop(s, m, 'POST', '/v1/merchant/orders', {
  amount: 1500, currency: 'USD', description: 'Two flat whites', idempotency_key: newKey(), ...fields,
});
const pay = (s, who, body) => s.call('POST', '/v1/pay', {
  token: who.token, body: { currency: 'USD', pin: '123456', idempotency_key: newKey(), ...body },
});
const payPath = (code) => `/v1/pay/${encodeURIComponent(code)}`;

describe('merchant accounts and keys', () => {
  test('opening shows the API key and webhook secret once; one merchant per user; edits and checks', async () => {
    const { owner, merchant, apiKey, secret } = await openMerchant(srv, { name: '  Tea House  ' });
    assert.match(apiKey, /^pzk_[A-Za-z0-9_-]{43}$/);
    assert.match(secret, /^whsec_[A-Za-z0-9_-]{43}$/);
    assert.match(merchant.id, /^[0-9]+$/);
    assert.equal(merchant.webhook_url, null);
    assert.equal(merchant.payment_code, `plaza:pay?m=${merchant.id}`);
    const again = await srv.call('POST', '/v1/merchants', { token: owner.token, body: { name: 'Second' } });
    expectError(assert, again, 409, 'merchant_exists');

    const me = await srv.call('GET', '/v1/merchants/me', { token: owner.token });
    assert.equal(me.status, 200);
    assert.equal(me.json.merchant.id, merchant.id);
    assert.ok(!me.text.includes(apiKey) && !me.text.includes(secret), 'secrets are shown once only');

    const patched = await srv.call('PATCH', '/v1/merchants/me', {
      token: owner.token, body: { name: 'Tea House Annex', webhook_url: 'http://127.0.0.1:9/x' },
    });
    assert.equal(patched.status, 200, patched.text);
    assert.equal(patched.json.merchant.name, 'Tea House Annex');
    assert.equal(patched.json.merchant.webhook_url, 'http://127.0.0.1:9/x');
    const cleared = await srv.call('PATCH', '/v1/merchants/me', { token: owner.token, body: { webhook_url: null } });
    assert.equal(cleared.json.merchant.webhook_url, null);

    const other = await register(srv);
    expectError(assert, await srv.call('GET', '/v1/merchants/me', { token: other.token }), 404, 'not_found');
    for (const body of [{}, { name: '' }, { name: '   ' }, { name: 'x'.repeat(65) }, { name: 'a\nb' }, { name: 7 },
      { name: 'ok', webhook_url: 'https://example.com/' }, { name: 'ok', webhook_url: 'ftp://x/' },
      { name: 'ok', webhook_url: 'http://user:pw@example.com/' }, { name: 'ok', webhook_url: 'http://exa mple.com/' },
      { name: 'ok', webhook_url: 'http://example.com:99999/' }, { name: 'ok', webhook_url: 'http:///nohost' },
      { name: 'ok', webhook_url: 12 }]) {
      expectError(assert, await srv.call('POST', '/v1/merchants', { token: other.token, body }), 400, 'invalid_request');
    }
    expectError(assert, await srv.call('POST', '/v1/merchants', { body: { name: 'x' } }), 401, 'unauthorized');
  });

  test('the API key opens the merchant API only; rotating it shuts the old one out', async () => {
    const m = await openMerchant(srv);
    assert.equal((await newOrder(srv, m)).status, 201);
    // A user session is not a merchant key, and a merchant key is not a session.
    const asUser = await srv.call('POST', '/v1/merchant/orders', { token: m.owner.token, body: {} });
    expectError(assert, asUser, 401, 'unauthorized');
    expectError(assert, await srv.call('GET', '/v1/wallet', { token: m.apiKey }), 401, 'unauthorized');
    expectError(assert, await shop(srv, { apiKey: `pzk_${'A'.repeat(43)}` }, 'POST', '/v1/merchant/orders', {}), 401, 'unauthorized');

    const rotated = await srv.call('POST', '/v1/merchants/me/keys', { token: m.owner.token });
    assert.equal(rotated.status, 201, rotated.text);
    assert.notEqual(rotated.json.api_key, m.apiKey);
    expectError(assert, await newOrder(srv, m), 401, 'unauthorized');
    assert.equal((await newOrder(srv, { apiKey: rotated.json.api_key })).status, 201);
  });

  test('the static QR code is a public SVG of plaza:pay?m=ID', async () => {
    const { merchant } = await openMerchant(srv);
    const res = await fetch(srv.url(merchant.qr_svg_url));
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^image\/svg\+xml/);
    assert.match(await res.text(), /^<svg [^>]*viewBox="0 0 \d+ \d+"/);
    assert.equal((await fetch(srv.url('/v1/merchants/123456789/qr.svg'))).status, 404);
  });
});

describe('QR payments', () => {
  test('a dynamic order: the payer sees it, pays once, money moves exactly once', async () => {
    const m = await openMerchant(srv);
    const payer = await funded(srv, 5000);
    const created = await newOrder(srv, m, { merchant_order_id: 'A-1001', expires_in_s: 600 });
    assert.equal(created.status, 201, created.text);
    const order = created.json.order;
    assert.equal(order.status, 'pending');
    assert.equal(order.amount, 1500);
    assert.equal(order.merchant_order_id, 'A-1001');
    assert.match(order.code, /^plaza:pay\?o=[A-Za-z0-9_-]{22}$/);
    assert.equal(order.pay_url, payPath(order.code));
    const svg = await fetch(srv.url(order.qr_svg_url));
    assert.equal(svg.status, 200);

    const seen = await srv.call('GET', payPath(order.code), { token: payer.token });
    assert.equal(seen.status, 200, seen.text);
    assert.equal(seen.json.merchant.name, 'Corner Café');
    assert.equal(seen.json.amount, 1500);
    assert.equal(seen.json.currency, 'USD');
    assert.equal(seen.json.status, 'pending');
    assert.equal(seen.json.order_id, order.id);

    const key = newKey();
    const paid = await pay(srv, payer, { code: order.code, idempotency_key: key });
    assert.equal(paid.status, 201, paid.text);
    assert.equal(paid.json.payment.status, 'completed');
    assert.equal(paid.json.payment.amount, 1500);
    assert.equal(paid.json.payment.order_id, order.id);
    assert.equal(paid.json.payment.merchant.id, m.merchant.id);
    const retry = await pay(srv, payer, { code: order.code, idempotency_key: key });
    assert.equal(retry.status, 201);
    assert.equal(retry.text, paid.text);
    assert.equal(await balance(srv, payer), 3500);
    assert.equal(await balance(srv, m.owner), 1500);

    expectError(assert, await pay(srv, payer, { code: order.code }), 409, 'order_paid');
    const other = await funded(srv, 5000);
    expectError(assert, await pay(srv, other, { code: order.code }), 409, 'order_paid');
    assert.equal(await balance(srv, other), 5000);

    const shopView = await shop(srv, m, 'GET', `/v1/merchant/orders/${order.id}`);
    assert.equal(shopView.status, 200);
    assert.equal(shopView.json.order.status, 'paid');
    assert.equal(shopView.json.order.paid_amount, 1500);
    assert.equal(shopView.json.order.payment_id, paid.json.payment.id);
    // Another merchant cannot see it.
    const m2 = await openMerchant(srv);
    expectError(assert, await shop(srv, m2, 'GET', `/v1/merchant/orders/${order.id}`), 404, 'not_found');
  });

  test('orders are idempotent per merchant; bad orders are refused', async () => {
    const m = await openMerchant(srv);
    const key = newKey();
    const a = await newOrder(srv, m, { idempotency_key: key });
    const b = await newOrder(srv, m, { idempotency_key: key });
    assert.equal(a.status, 201);
    assert.equal(b.text, a.text);
    expectError(assert, await newOrder(srv, m, { idempotency_key: key, amount: 1600 }), 409, 'idempotency_key_reused');
    for (const fields of [{ amount: 0 }, { amount: -5 }, { amount: 1.5 }, { amount: '100' }, { amount: 1000000000001 },
      { description: '' }, { description: 'x'.repeat(141) }, { expires_in_s: 0 }, { expires_in_s: 'soon' },
      { expires_in_s: 604801 }, { merchant_order_id: '' }, { idempotency_key: '' }]) {
      expectError(assert, await newOrder(srv, m, fields), 400, 'invalid_request');
    }
    expectError(assert, await newOrder(srv, m, { currency: 'GBP' }), 400, 'unknown_currency');
  });

  test('a static code: the payer names the amount; bad input moves nothing', async () => {
    const m = await openMerchant(srv);
    const payer = await funded(srv, 1000);
    const code = m.merchant.payment_code;
    const seen = await srv.call('GET', payPath(code), { token: payer.token });
    assert.equal(seen.status, 200, seen.text);
    assert.equal(seen.json.amount, null);
    assert.equal(seen.json.status, 'open');
    for (const amount of [undefined, 0, -1, 2.5, '300', null, 1000000000001]) {
      expectError(assert, await pay(srv, payer, { code, amount }), 400, 'invalid_request');
    }
    expectError(assert, await pay(srv, payer, { code, amount: 100, currency: 'XYZ' }), 400, 'unknown_currency');
    for (const bad of ['plaza:pay?m=', 'plaza:pay?m=abc', 'plaza:pay?x=1', 'http://evil/', 'plaza:pay?o=short', 42]) {
      expectError(assert, await pay(srv, payer, { code: bad, amount: 100 }), 400, 'invalid_request');
    }
    expectError(assert, await pay(srv, payer, { code: 'plaza:pay?m=123456789', amount: 100 }), 404, 'not_found');
    expectError(assert, await pay(srv, payer, { code, amount: 100, pin: '000000' }), 403, 'wrong_pin');
    expectError(assert, await pay(srv, payer, { code, amount: 5000 }), 422, 'insufficient_funds');
    assert.equal(await balance(srv, payer), 1000);
    assert.equal(await balance(srv, m.owner), 0);

    const paid = await pay(srv, payer, { code, amount: 250 });
    assert.equal(paid.status, 201, paid.text);
    assert.equal(await balance(srv, payer), 750);
    assert.equal(await balance(srv, m.owner), 250);
    const order = await shop(srv, m, 'GET', `/v1/merchant/orders/${paid.json.payment.order_id}`);
    assert.equal(order.json.order.status, 'paid');
    assert.equal(order.json.order.amount, 250);
    // Paying one's own merchant is refused.
    await topup(srv, m.owner, 100);
    expectError(assert, await pay(srv, m.owner, { code, amount: 10 }), 400, 'invalid_request');
    const h = (await srv.call('GET', '/v1/wallet/transactions', { token: payer.token })).json;
    assert.deepEqual(h.transactions.slice(0, 1).map((t) => [t.type, t.amount]), [['merchant_payment', -250]]);
  });

  test('an order past its expiry is 410 order_expired; another currency or amount is refused', async () => {
    const m = await openMerchant(srv);
    const payer = await funded(srv, 5000);
    const order = (await newOrder(srv, m, { expires_in_s: 1 })).json.order;
    expectError(assert, await pay(srv, payer, { code: order.code, currency: 'EUR' }), 400, 'invalid_request');
    expectError(assert, await pay(srv, payer, { code: order.code, amount: 1400 }), 400, 'invalid_request');
    await sleep(1100);
    expectError(assert, await pay(srv, payer, { code: order.code }), 410, 'order_expired');
    const seen = await srv.call('GET', payPath(order.code), { token: payer.token });
    assert.equal(seen.json.status, 'expired');
    assert.equal(await balance(srv, payer), 5000);
    expectError(assert, await srv.call('GET', payPath('plaza:pay?o=AAAAAAAAAAAAAAAAAAAAAA'), { token: payer.token }), 404, 'not_found');
  });
});

describe('refunds and webhooks', () => {
  test('signed webhooks for payment and refunds; partial and full refunds, never more than paid', async () => {
    const hooks = await receiver();
    try {
      const m = await openMerchant(srv, { webhookUrl: hooks.url });
      const payer = await funded(srv, 3000);
      const order = (await newOrder(srv, m, { amount: 2000 })).json.order;
      const paid = await pay(srv, payer, { code: order.code });
      assert.equal(paid.status, 201, paid.text);
      await hooks.until((g) => g.some((x) => x.body.type === 'order.paid'));
      const hook = hooks.got.find((x) => x.body.type === 'order.paid');
      assert.equal(hook.method, 'POST');
      assert.equal(hook.url, '/hooks/plaza?src=test');
      assert.match(hook.headers['content-type'], /application\/json/);
      assert.ok(verifySignature(m.secret, hook.headers['plaza-signature'], hook.raw), hook.headers['plaza-signature']);
      assert.equal(hook.body.data.order.id, order.id);
      assert.equal(hook.body.data.order.status, 'paid');
      assert.equal(hook.body.data.payment.id, paid.json.payment.id);
      assert.equal(hook.body.data.payment.amount, 2000);
      assert.match(hook.body.id, /^[0-9]+$/);
      // The documented check refuses a tampered body, another secret, and an old timestamp (a replay).
      const tampered = Buffer.from(hook.raw.toString().replace('"amount":2000', '"amount":9000'));
      assert.notDeepEqual(tampered, hook.raw);
      assert.equal(verifySignature(m.secret, hook.headers['plaza-signature'], tampered), false);
      assert.equal(verifySignature(`whsec_${'x'.repeat(43)}`, hook.headers['plaza-signature'], hook.raw), false);
      assert.equal(verifySignature(m.secret, hook.headers['plaza-signature'], hook.raw, Math.floor(Date.now() / 1000) + 301), false);
      const t = Number(/t=(\d+)/.exec(hook.headers['plaza-signature'])[1]);
      const oldT = t - 600;
      const oldSig = `t=${oldT},v1=${createHmac('sha256', m.secret).update(`${oldT}.`).update(hook.raw).digest('hex')}`;
      assert.equal(verifySignature(m.secret, oldSig, hook.raw), false, 'a correctly signed but old delivery is a replay');

      const refundKey = newKey();
      const r1 = await shop(srv, m, 'POST', `/v1/merchant/orders/${order.id}/refunds`,
        { amount: 500, idempotency_key: refundKey, reason: 'one cup spilt' });
      assert.equal(r1.status, 201, r1.text);
      assert.equal(r1.json.refund.amount, 500);
      assert.equal(r1.json.refund.reason, 'one cup spilt');
      assert.equal(r1.json.order.refunded_amount, 500);
      assert.equal(r1.json.order.status, 'paid');
      const r1again = await shop(srv, m, 'POST', `/v1/merchant/orders/${order.id}/refunds`,
        { amount: 500, idempotency_key: refundKey, reason: 'one cup spilt' });
      assert.equal(r1again.text, r1.text);
      assert.equal(await balance(srv, payer), 1500);
      assert.equal(await balance(srv, m.owner), 1500);

      const tooMuch = await shop(srv, m, 'POST', `/v1/merchant/orders/${order.id}/refunds`, { amount: 1501, idempotency_key: newKey() });
      expectError(assert, tooMuch, 422, 'refund_exceeds_payment');
      for (const amount of [0, -1, 1.5, '5']) {
        expectError(assert, await shop(srv, m, 'POST', `/v1/merchant/orders/${order.id}/refunds`, { amount, idempotency_key: newKey() }), 400, 'invalid_request');
      }
      const r2 = await shop(srv, m, 'POST', `/v1/merchant/orders/${order.id}/refunds`, { amount: 1500, idempotency_key: newKey() });
      assert.equal(r2.status, 201, r2.text);
      assert.equal(r2.json.order.status, 'refunded');
      assert.equal(r2.json.order.refunded_amount, 2000);
      expectError(assert, await shop(srv, m, 'POST', `/v1/merchant/orders/${order.id}/refunds`, { amount: 1, idempotency_key: newKey() }), 422, 'refund_exceeds_payment');
      assert.equal(await balance(srv, payer), 3000);
      assert.equal(await balance(srv, m.owner), 0);

      await hooks.until((g) => g.filter((x) => x.body.type === 'order.refunded').length === 2);
      const refunds = hooks.got.filter((x) => x.body.type === 'order.refunded');
      for (const h of refunds) assert.ok(verifySignature(m.secret, h.headers['plaza-signature'], h.raw));
      assert.deepEqual(refunds.map((h) => h.body.data.refund.amount).sort((a, b) => a - b), [500, 1500]);

      // A pending order cannot be refunded; nor can another merchant's.
      const pending = (await newOrder(srv, m)).json.order;
      expectError(assert, await shop(srv, m, 'POST', `/v1/merchant/orders/${pending.id}/refunds`, { amount: 1, idempotency_key: newKey() }), 409, 'order_not_paid');
      const m2 = await openMerchant(srv);
      expectError(assert, await shop(srv, m2, 'POST', `/v1/merchant/orders/${order.id}/refunds`, { amount: 1, idempotency_key: newKey() }), 404, 'not_found');
    } finally {
      await hooks.close();
    }
  });

  test('a refund beyond the merchant\'s balance is 422 insufficient_funds and moves nothing', async () => {
    const m = await openMerchant(srv);
    const payer = await funded(srv, 1000);
    const order = (await newOrder(srv, m, { amount: 800 })).json.order;
    assert.equal((await pay(srv, payer, { code: order.code })).status, 201);
    // The owner spends the takings.
    const w = await srv.call('POST', '/v1/wallet/withdrawals', {
      token: m.owner.token, body: { amount: 700, currency: 'USD', pin: '123456', idempotency_key: newKey() },
    });
    assert.equal(w.status, 201, w.text);
    const res = await shop(srv, m, 'POST', `/v1/merchant/orders/${order.id}/refunds`, { amount: 200, idempotency_key: newKey() });
    expectError(assert, res, 422, 'insufficient_funds');
    assert.equal(await balance(srv, m.owner), 100);
    assert.equal(await balance(srv, payer), 200);
    const ok = await shop(srv, m, 'POST', `/v1/merchant/orders/${order.id}/refunds`, { amount: 100, idempotency_key: newKey() });
    assert.equal(ok.status, 201, ok.text);
    assert.equal(await balance(srv, payer), 300);
  });

  test('a receiver that answers 500 twice then 200 gets the webhook three times', { timeout: 60000 }, async () => {
    const hooks = await receiver();
    try {
      hooks.statuses.push(500, 500);
      const m = await openMerchant(srv, { webhookUrl: hooks.url });
      const payer = await funded(srv, 1000);
      assert.equal((await pay(srv, payer, { code: m.merchant.payment_code, amount: 100 })).status, 201);
      await hooks.until((g) => g.some((x) => x.status === 200), 30000);
      await sleep(1500); // nothing more comes once it was taken
      assert.deepEqual(hooks.got.map((x) => x.status), [500, 500, 200]);
      assert.equal(new Set(hooks.got.map((x) => x.body.id)).size, 1, 'the same webhook each time');
      for (const h of hooks.got) assert.ok(verifySignature(m.secret, h.headers['plaza-signature'], h.raw));
    } finally {
      await hooks.close();
    }
  });

  test('a webhook pending across kill -9 is delivered after the restart; the ledger verifies', { timeout: 90000 }, async () => {
    const hooks = await receiver();
    const s = await startServer({ env: PRIVATE_OK });
    let s2;
    try {
      hooks.statuses.push(...Array(100).fill(503));
      const m = await openMerchant(s, { webhookUrl: hooks.url });
      const payer = await funded(s, 1000);
      const paid = await pay(s, payer, { code: m.merchant.payment_code, amount: 300 });
      assert.equal(paid.status, 201, paid.text);
      await hooks.until((g) => g.length >= 1);
      await sleep(300); // the failed attempt is written down
      await s.kill9();
      hooks.statuses.length = 0; // from now on: 200
      const before = hooks.got.length;
      s2 = await startServer({ dataDir: s.dir, env: PRIVATE_OK });
      await hooks.until((g) => g.slice(before).some((x) => x.status === 200), 60000);
      const delivered = hooks.got.slice(before).find((x) => x.status === 200);
      assert.equal(delivered.body.type, 'order.paid');
      assert.equal(delivered.body.data.payment.id, paid.json.payment.id);
      assert.ok(verifySignature(m.secret, delivered.headers['plaza-signature'], delivered.raw));
      assert.equal(await balance(s2, payer), 700);
      assert.equal(await balance(s2, m.owner), 300);
      await s2.stop({ keepData: true });
      s2 = null;
      const ok = spawnSync(PLAZAD, ['ledger', 'verify', '--data-dir', s.dir], { encoding: 'utf8' });
      assert.equal(ok.status, 0, ok.stdout + ok.stderr);
      // A damaged order total is caught.
      execFileSync('sqlite3', [path.join(s.dir, 'plaza.db'), 'UPDATE merchant_orders SET refunded_amount = 1']);
      const bad = spawnSync(PLAZAD, ['ledger', 'verify', '--data-dir', s.dir], { encoding: 'utf8' });
      assert.equal(bad.status, 1, bad.stdout + bad.stderr);
      assert.match(bad.stdout, /refunded_amount 1 but its refunds sum to 0/);
    } finally {
      await s2?.stop();
      await s.stop();
      await hooks.close();
    }
  });
});

describe('webhooks go to public addresses only', () => {
  test('a URL naming a private or local address is refused; a name resolving to one gets nothing sent', { timeout: 60000 }, async () => {
    const hooks = await receiver();
    const s = await startServer(); // the default: public addresses only
    try {
      const owner = await funded(s);
      // A merchant must not make Plaza call its own host or network: loopback, private
      // ranges, the cloud metadata service, IPv6 loopback and link-local, mapped forms.
      for (const url of [hooks.url, 'http://10.1.2.3/hook', 'http://192.168.0.10/', 'http://172.20.0.1:8080/',
        'http://169.254.169.254/latest/meta-data/', 'http://0.0.0.0:8080/', 'http://100.64.0.1/',
        'http://[::1]:8080/', 'http://[fe80::1]/', 'http://[fd00::5]/', 'http://[::ffff:127.0.0.1]/']) {
        const res = await s.call('POST', '/v1/merchants', { token: owner.token, body: { name: 'Corner Café', webhook_url: url } });
        expectError(assert, res, 400, 'webhook_url_private');
        assert.match(res.json.error.message, /private or local address/, url);
      }
      // A public address is fine (nothing is sent until a payment).
      const ok = await s.call('POST', '/v1/merchants', { token: owner.token, body: { name: 'Corner Café', webhook_url: 'http://203.0.114.7/hooks' } });
      assert.equal(ok.status, 201, ok.text);
      expectError(assert, await s.call('PATCH', '/v1/merchants/me', { token: owner.token, body: { webhook_url: 'http://127.0.0.1:80/' } }),
        400, 'webhook_url_private');

      // A name is checked on the addresses it resolves to when sending: "localhost" reaches
      // the shop's back end on 127.0.0.1 only if private addresses were allowed.
      const m = await openMerchant(s, { webhookUrl: `http://localhost:${hooks.port}/hooks/plaza` });
      const payer = await funded(s, 1000);
      const paid = await pay(s, payer, { code: m.merchant.payment_code, amount: 300 });
      assert.equal(paid.status, 201, paid.text);
      const deadline = Date.now() + 15000;
      while (!/resolves to private or local addresses only/.test(s.logs()) && Date.now() < deadline) await sleep(100);
      assert.match(s.logs(), /webhook delivery failed.*resolves to private or local addresses only/);
      await sleep(1500); // the first retry comes after 1 s: refused as well
      assert.equal(hooks.got.length, 0, 'nothing reached the address behind the name');
      // The payment itself stands.
      assert.equal(await balance(s, m.owner), 300);
    } finally {
      await hooks.close();
      await s.stop();
    }
  });
});
