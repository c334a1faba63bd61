// API tests of the wallet: PIN, top-ups and balances, transfers (accept, return, auto-accept, expiry), amounts, idempotency, withdrawals, `plazad ledger verify`.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PASSWORD, PLAZAD, expectError, register, startServer, wsHello } from './lib.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let srv;
before(async () => { srv = await startServer(); });
after(async () => { await srv?.stop(); });

let keyCounter = 0;
const newKey = () => `key-${process.pid}-${++keyCounter}`;

const setPin = (s, who, pin = '123456', password = PASSWORD) =>
  s.call('PUT', '/v1/wallet/pin', { token: who.token, body: { pin, password } });
const topup = (s, who, amount, currency = 'USD', key = newKey()) =>
  s.call('POST', '/v1/wallet/topups', { token: who.token, body: { amount, currency, idempotency_key: key } });
const send = (s, from, to, amount, { pin = '123456', key = newKey(), currency = 'USD', note } = {}) =>
  s.call('POST', '/v1/wallet/transfers', {
    token: from.token,
    body: { to_user_id: to.user.id, amount, currency, pin, idempotency_key: key, ...(note === undefined ? {} : { note }) },
  });
const balance = async (s, who, currency = 'USD') => {
  const res = await s.call('GET', '/v1/wallet', { token: who.token });
  assert.equal(res.status, 200, res.text);
  return res.json.balances.find((b) => b.currency === currency).available;
};

/** A user with a PIN and `amount` USD. */
async function funded(s, amount = 0) {
  const who = await register(s);
  assert.equal((await setPin(s, who)).status, 204);
  if (amount) assert.equal((await topup(s, who, amount)).status, 201);
  return who;
}

function verify(dir) {
  return spawnSync(PLAZAD, ['ledger', 'verify', '--data-dir', dir], { encoding: 'utf8' });
}

describe('balances and top-ups', () => {
  test('a new wallet shows every enabled currency at 0', async () => {
    const u = await register(srv);
    const res = await srv.call('GET', '/v1/wallet', { token: u.token });
    assert.equal(res.status, 200);
    assert.deepEqual(res.json.balances, [{ currency: 'USD', available: 0 }, { currency: 'EUR', available: 0 }]);
    assert.equal(res.json.pin_set, false);
    expectError(assert, await srv.call('GET', '/v1/wallet'), 401, 'unauthorized');
  });

  test('top-ups add up per currency and show in the history, newest first', async () => {
    const u = await register(srv);
    const res = await topup(srv, u, 1250, 'USD');
    assert.equal(res.status, 201, res.text);
    assert.equal(res.json.topup.status, 'completed');
    assert.match(res.json.topup.id, /^[0-9]+$/);
    assert.equal((await topup(srv, u, 50, 'EUR')).status, 201);
    assert.equal((await topup(srv, u, 5, 'USD')).status, 201);
    assert.equal(await balance(srv, u, 'USD'), 1255);
    assert.equal(await balance(srv, u, 'EUR'), 50);
    const h = (await srv.call('GET', '/v1/wallet/transactions', { token: u.token })).json;
    assert.deepEqual(h.transactions.map((t) => [t.type, t.amount, t.currency]),
      [['topup', 5, 'USD'], ['topup', 50, 'EUR'], ['topup', 1250, 'USD']]);
    const page = (await srv.call('GET', '/v1/wallet/transactions?limit=2', { token: u.token })).json;
    assert.equal(page.transactions.length, 2);
    const rest = (await srv.call('GET', `/v1/wallet/transactions?limit=2&before=${page.next_before}`, { token: u.token })).json;
    assert.deepEqual(rest.transactions.map((t) => t.amount), [1250]);
    assert.equal(rest.next_before, null);
  });

  test('bad amounts and currencies are refused and move nothing', async () => {
    const u = await register(srv);
    const bad = [-100, 0, 1.5, '100', true, null, 1000000000001, [], {}];
    for (const amount of bad) {
      expectError(assert, await topup(srv, u, amount), 400, 'invalid_request');
    }
    // 1e3 is a real number in JSON's grammar, not an integer; beyond 64 bits does not parse.
    for (const raw of ['1e3', '1000.0', '99999999999999999999', '-99999999999999999999']) {
      const res = await srv.call('POST', '/v1/wallet/topups', {
        token: u.token, raw: `{"amount":${raw},"currency":"USD","idempotency_key":"${newKey()}"}`,
      });
      assert.equal(res.status, 400, `${raw}: ${res.text}`);
    }
    const noAmount = await srv.call('POST', '/v1/wallet/topups', { token: u.token, body: { currency: 'USD', idempotency_key: newKey() } });
    expectError(assert, noAmount, 400, 'invalid_request');
    for (const currency of ['GBP', 'usd', 'USDX', '', 840]) {
      const res = await topup(srv, u, 100, currency);
      expectError(assert, res, 400, typeof currency === 'string' ? 'unknown_currency' : 'invalid_request');
    }
    for (const key of ['', 'x'.repeat(65), 'tab\there', 'é']) {
      expectError(assert, await topup(srv, u, 100, 'USD', key), 400, 'invalid_request');
    }
    assert.equal((await topup(srv, u, 1000000000000)).status, 201); // the largest allowed
    assert.equal(await balance(srv, u), 1000000000000);
    assert.equal(await balance(srv, u, 'EUR'), 0);
  });
});

describe('payment PIN', () => {
  test('set and change need the password; the PIN is six digits', async () => {
    const u = await register(srv);
    expectError(assert, await setPin(srv, u, '123456', 'wrong password!'), 401, 'invalid_credentials');
    for (const pin of ['12345', '1234567', 'abcdef', 123456]) {
      expectError(assert, await setPin(srv, u, pin), 400, 'invalid_request');
    }
    assert.equal((await setPin(srv, u, '111111')).status, 204);
    assert.equal((await srv.call('GET', '/v1/wallet', { token: u.token })).json.pin_set, true);
    assert.equal((await topup(srv, u, 100)).status, 201);
    const other = await register(srv);
    expectError(assert, await send(srv, u, other, 10, { pin: '123456' }), 403, 'wrong_pin');
    assert.equal((await setPin(srv, u, '123456')).status, 204);
    assert.equal((await send(srv, u, other, 10, { pin: '123456' })).status, 201);
    expectError(assert, await send(srv, u, other, 10, { pin: '111111' }), 403, 'wrong_pin');
  });

  test('a debit without a PIN set is refused', async () => {
    const u = await register(srv);
    const v = await register(srv);
    assert.equal((await topup(srv, u, 100)).status, 201);
    expectError(assert, await send(srv, u, v, 10), 403, 'pin_not_set');
    assert.equal(await balance(srv, u), 100);
  });
});

describe('transfers', () => {
  test('pending until the receiver accepts; then completed; accept twice is harmless', async () => {
    const a = await funded(srv, 1000);
    const b = await register(srv);
    const res = await send(srv, a, b, 300, { note: 'dinner 🍜' });
    assert.equal(res.status, 201, res.text);
    const t = res.json.transfer;
    assert.equal(t.status, 'pending');
    assert.equal(t.amount, 300);
    assert.equal(t.note, 'dinner 🍜');
    assert.equal(t.to_user_id, b.user.id);
    assert.equal(await balance(srv, a), 700);
    assert.equal(await balance(srv, b), 0);
    // Only the receiver may accept; a stranger does not see it.
    const c = await register(srv);
    expectError(assert, await srv.call('GET', `/v1/wallet/transfers/${t.id}`, { token: c.token }), 404, 'not_found');
    expectError(assert, await srv.call('POST', `/v1/wallet/transfers/${t.id}/accept`, { token: a.token }), 404, 'not_found');
    const acc = await srv.call('POST', `/v1/wallet/transfers/${t.id}/accept`, { token: b.token });
    assert.equal(acc.status, 200, acc.text);
    assert.equal(acc.json.transfer.status, 'completed');
    assert.equal((await srv.call('POST', `/v1/wallet/transfers/${t.id}/accept`, { token: b.token })).status, 200);
    assert.equal(await balance(srv, b), 300);
    assert.equal(await balance(srv, a), 700);
    expectError(assert, await srv.call('POST', `/v1/wallet/transfers/${t.id}/return`, { token: b.token }), 409, 'transfer_not_pending');
    const seen = await srv.call('GET', `/v1/wallet/transfers/${t.id}`, { token: a.token });
    assert.equal(seen.json.transfer.status, 'completed');
    const hb = (await srv.call('GET', '/v1/wallet/transactions', { token: b.token })).json.transactions;
    assert.deepEqual(hb.map((x) => [x.type, x.amount, x.counterparty_id]), [['transfer_accept', 300, a.user.id]]);
  });

  test('the receiver returns it: the sender gets it back, and it cannot be accepted after', async () => {
    const a = await funded(srv, 500);
    const b = await register(srv);
    const t = (await send(srv, a, b, 200)).json.transfer;
    const ret = await srv.call('POST', `/v1/wallet/transfers/${t.id}/return`, { token: b.token });
    assert.equal(ret.status, 200, ret.text);
    assert.equal(ret.json.transfer.status, 'returned');
    assert.equal(await balance(srv, a), 500);
    expectError(assert, await srv.call('POST', `/v1/wallet/transfers/${t.id}/accept`, { token: b.token }), 409, 'transfer_not_pending');
    assert.equal(await balance(srv, b), 0);
  });

  test('a receiver who accepts automatically gets the money at once', async () => {
    const a = await funded(srv, 500);
    const b = await register(srv);
    assert.deepEqual((await srv.call('GET', '/v1/wallet/settings', { token: b.token })).json, { auto_accept_transfers: false });
    const p = await srv.call('PATCH', '/v1/wallet/settings', { token: b.token, body: { auto_accept_transfers: true } });
    assert.equal(p.status, 200, p.text);
    assert.deepEqual(p.json, { auto_accept_transfers: true });
    expectError(assert, await srv.call('PATCH', '/v1/wallet/settings', { token: b.token, body: { auto_accept_transfers: 'yes' } }), 400, 'invalid_request');
    const res = await send(srv, a, b, 125, { note: 'lunch' });
    assert.equal(res.json.transfer.status, 'completed');
    assert.equal(await balance(srv, b), 125);
    assert.equal(await balance(srv, a), 375);
    // Each history tells it as with a transfer accepted by hand: sent, and received.
    const history = async (u, query = '') =>
      (await srv.call('GET', `/v1/wallet/transactions${query}`, { token: u.token })).json.transactions.map((x) => [
        x.type, x.amount, x.counterparty_id, x.note, x.ref_id]);
    const t = res.json.transfer.id;
    assert.deepEqual(await history(b), [['transfer_accept', 125, a.user.id, 'lunch', t]]);
    assert.deepEqual(await history(b, '?type=transfer_accept'), [['transfer_accept', 125, a.user.id, 'lunch', t]]);
    assert.deepEqual(await history(b, '?type=transfer'), []);
    assert.deepEqual(await history(a, '?type=transfer'), [['transfer', -125, b.user.id, 'lunch', t]]);
    assert.deepEqual(await history(a, '?type=transfer_accept'), []);
  });

  test('insufficient funds, oneself, unknown users and blocks are refused and move nothing', async () => {
    const a = await funded(srv, 100);
    const b = await register(srv);
    expectError(assert, await send(srv, a, b, 101), 422, 'insufficient_funds');
    expectError(assert, await send(srv, a, b, 5, { currency: 'EUR' }), 422, 'insufficient_funds');
    expectError(assert, await send(srv, a, a, 5), 400, 'invalid_request');
    expectError(assert, await send(srv, a, { user: { id: '12345' } }, 5), 404, 'not_found');
    for (const amount of [-5, 0, 2.5, '5', 1000000000001]) expectError(assert, await send(srv, a, b, amount), 400, 'invalid_request');
    expectError(assert, await send(srv, a, b, 5, { currency: 'XXX' }), 400, 'unknown_currency');
    // Blocked either way.
    assert.equal((await srv.call('POST', '/v1/blocks', { token: b.token, body: { user_id: a.user.id } })).status, 201);
    expectError(assert, await send(srv, a, b, 5), 403, 'blocked');
    const c = await register(srv);
    assert.equal((await srv.call('POST', '/v1/blocks', { token: a.token, body: { user_id: c.user.id } })).status, 201);
    expectError(assert, await send(srv, a, c, 5), 403, 'blocked');
    assert.equal(await balance(srv, a), 100);
  });

  test('the same idempotency_key gives the first answer and moves money once; other parameters get 409', async () => {
    const a = await funded(srv, 1000);
    const b = await register(srv);
    const key = newKey();
    const first = await send(srv, a, b, 400, { key, note: 'rent' });
    assert.equal(first.status, 201);
    const again = await send(srv, a, b, 400, { key, note: 'rent' });
    assert.equal(again.status, first.status);
    assert.equal(again.text, first.text);
    // Concurrent retries too.
    const many = await Promise.all(Array.from({ length: 5 }, () => send(srv, a, b, 400, { key, note: 'rent' })));
    for (const r of many) assert.equal(r.text, first.text);
    assert.equal(await balance(srv, a), 600);
    expectError(assert, await send(srv, a, b, 401, { key, note: 'rent' }), 409, 'idempotency_key_reused');
    expectError(assert, await send(srv, a, b, 400, { key, note: 'other' }), 409, 'idempotency_key_reused');
    expectError(assert, await topup(srv, a, 400, 'USD', key), 409, 'idempotency_key_reused');
    // A retry of a top-up too.
    const tkey = newKey();
    const t1 = await topup(srv, a, 10, 'USD', tkey);
    const t2 = await topup(srv, a, 10, 'USD', tkey);
    assert.equal(t2.status, 201);
    assert.equal(t2.text, t1.text);
    assert.equal(await balance(srv, a), 610);
    // A refusal on the merits is the key's answer too: a late duplicate of
    // a request the client saw fail never moves money after a top-up.
    const fkey = newKey();
    const refused = await send(srv, a, b, 1000, { key: fkey });
    expectError(assert, refused, 422, 'insufficient_funds');
    assert.equal((await topup(srv, a, 1000)).status, 201);
    const late = await send(srv, a, b, 1000, { key: fkey });
    assert.equal(late.status, 422);
    assert.equal(late.text, refused.text);
    assert.equal(await balance(srv, a), 1610);
    // A wrong PIN is not an answer: the same request with the right PIN goes through.
    const pkey = newKey();
    expectError(assert, await send(srv, a, b, 10, { key: pkey, pin: '999999' }), 403, 'wrong_pin');
    assert.equal((await send(srv, a, b, 10, { key: pkey })).status, 201);
    assert.equal(await balance(srv, a), 1600);
  });

  test('withdrawals take the money out, guarded by the PIN', async () => {
    const a = await funded(srv, 300);
    const w = (body) => srv.call('POST', '/v1/wallet/withdrawals', { token: a.token, body });
    expectError(assert, await w({ amount: 100, currency: 'USD', idempotency_key: newKey(), pin: '000000' }), 403, 'wrong_pin');
    expectError(assert, await w({ amount: 301, currency: 'USD', idempotency_key: newKey(), pin: '123456' }), 422, 'insufficient_funds');
    expectError(assert, await w({ amount: 100, currency: 'USD', idempotency_key: newKey() }), 400, 'invalid_request');
    const key = newKey();
    const res = await w({ amount: 120, currency: 'USD', idempotency_key: key, pin: '123456' });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.json.withdrawal.status, 'completed');
    assert.equal((await w({ amount: 120, currency: 'USD', idempotency_key: key, pin: '123456' })).text, res.text);
    assert.equal(await balance(srv, a), 180);
  });
});

describe('with its own server', () => {
  test('five wrong PINs lock payments for 15 minutes, and the lock survives a restart', async () => {
    const s = await startServer();
    let s2;
    try {
      const a = await funded(s, 100);
      const b = await register(s);
      for (let i = 1; i <= 4; i++) {
        const res = await send(s, a, b, 10, { pin: '000000' });
        expectError(assert, res, 403, 'wrong_pin');
        assert.match(res.json.error.message, new RegExp(`${5 - i} tr`));
      }
      const fifth = await send(s, a, b, 10, { pin: '000000' });
      expectError(assert, fifth, 423, 'pin_locked');
      const retry = Number(fifth.headers.get('retry-after'));
      assert.ok(retry > 800 && retry <= 900, `Retry-After ${retry}`);
      expectError(assert, await send(s, a, b, 10), 423, 'pin_locked'); // even the right PIN
      await s.kill9();
      s2 = await startServer({ dataDir: s.dir });
      expectError(assert, await send(s2, a, b, 10), 423, 'pin_locked');
      assert.equal(await balance(s2, a), 100);
      // A new PIN (with the password) lifts the lock.
      assert.equal((await setPin(s2, a, '222222')).status, 204);
      assert.equal((await send(s2, a, b, 10, { pin: '222222' })).status, 201);
    } finally {
      await s2?.stop();
      await s.stop();
    }
  });

  test('a transfer not accepted in time goes back to the sender (test-only short lifetime)', async () => {
    const s = await startServer({ env: { PLAZA_TEST_TRANSFER_TTL_MS: '1500' } });
    try {
      const a = await funded(s, 500);
      const b = await register(s);
      const t = (await send(s, a, b, 200)).json.transfer;
      assert.equal(await balance(s, a), 300);
      let status = 'pending';
      for (let i = 0; i < 100 && status === 'pending'; i++) {
        await sleep(200);
        status = (await s.call('GET', `/v1/wallet/transfers/${t.id}`, { token: a.token })).json.transfer.status;
      }
      assert.equal(status, 'expired');
      assert.equal(await balance(s, a), 500);
      expectError(assert, await s.call('POST', `/v1/wallet/transfers/${t.id}/accept`, { token: b.token }), 409, 'transfer_not_pending');
      const h = (await s.call('GET', '/v1/wallet/transactions', { token: a.token })).json.transactions;
      assert.deepEqual(h.map((x) => [x.type, x.amount]).slice(0, 2), [['transfer_expire', 200], ['transfer', -200]]);
    } finally {
      await s.stop();
    }
  });

  test('a provider that fails moves no money and the top-up ends failed', async () => {
    const s = await startServer({ env: { PLAZA_SANDBOX_FAIL: '1', PLAZA_SANDBOX_DELAY_MS: '50' } });
    try {
      const a = await register(s);
      const key = newKey();
      const res = await topup(s, a, 700, 'USD', key);
      assert.equal(res.status, 201, res.text);
      assert.equal(res.json.topup.status, 'failed');
      assert.equal(typeof res.json.topup.failure_reason, 'string');
      assert.equal((await topup(s, a, 700, 'USD', key)).text, res.text);
      assert.equal(await balance(s, a), 0);
      assert.deepEqual((await s.call('GET', '/v1/wallet/transactions', { token: a.token })).json.transactions, []);
    } finally {
      await s.stop();
    }
  });

  test('transfers committed together: one failing after its writes loses only itself; no event comes twice', { timeout: 120000 }, async () => {
    // The writer runs transfers queued side by side under one savepoint; one that fails after writing (here by a
    // test setting, in life a disk error) makes it roll the group back and run each of its transfers again alone.
    // The receivers accept by hand: a transfer to one who accepts automatically is made in the send log instead
    // (sendlog.test.mjs), and never reaches the writer as a job.
    const s = await startServer({ env: { PLAZA_TEST_FAIL_TRANSFER_AMOUNT: '777' } });
    let keep = false;
    try {
      const people = [];
      for (let i = 0; i < 4; i++) people.push(await funded(s, 1000000));
      // What each sees live: the events of a group's first run, undone with it, must not be pushed.
      const live = new Map();
      for (const p of people) {
        const sock = await wsHello(s, p.token);
        assert.equal(sock.first.type, 'ready');
        const ids = [];
        sock.ws.on('message', (data) => {
          const e = JSON.parse(data.toString());
          if (e.type === 'transfer.updated') ids.push(e.transfer.id);
        });
        live.set(p, { sock, ids });
      }
      const reruns = async () => Number(/^plaza_job_group_reruns_total (\d+)$/m.exec((await s.call('GET', '/metrics')).text)[1]);
      const made = [];
      // 40 transfers at once, one of the failing amount: the writer takes most of them in one batch. A burst whose
      // failing transfer happened to run alone is followed by another.
      for (let burst = 0; burst < 10 && (await reruns()) === 0; burst++) {
        const sends = [];
        for (let i = 0; i < 40; i++) {
          const from = people[i % 4];
          const to = people[(i + 1 + (Math.floor(i / 4) % 3)) % 4];
          const amount = i === 20 ? 777 : 100 + i;
          sends.push(send(s, from, to, amount).then((res) => ({ res, from, to, amount })));
        }
        for (const { res, from, to, amount } of await Promise.all(sends)) {
          if (amount === 777) {
            assert.equal(res.status, 500, res.text);
            continue;
          }
          assert.equal(res.status, 201, res.text);
          made.push({ id: res.json.transfer.id, from, to, amount });
        }
      }
      assert.ok((await reruns()) >= 1, 'no burst made the writer run a group again');
      // Every transfer answered 201 moved its money once, into escrow until accepted; the failing ones moved none.
      for (const p of people) {
        const out = made.filter((t) => t.from === p).reduce((sum, t) => sum + t.amount, 0);
        assert.equal(await balance(s, p), 1000000 - out);
      }
      // Each party has one transfer.updated per transfer of theirs, live and in its stream: what a group's first run
      // made left with it.
      for (const p of people) {
        const theirs = made.filter((t) => t.from === p || t.to === p).map((t) => t.id).sort();
        const { sock, ids } = live.get(p);
        for (let i = 0; i < 100 && ids.length < theirs.length; i++) await sleep(50);
        await sleep(100); // and nothing more comes
        assert.deepEqual([...ids].sort(), theirs);
        sock.ws.close();
      }
      for (const p of people) {
        const seen = [];
        for (let since = 0; ;) {
          const res = await s.call('GET', `/v1/sync?since=${since}&limit=500`, { token: p.token });
          assert.equal(res.status, 200, res.text);
          for (const e of res.json.events) if (e.type === 'transfer.updated') seen.push(e.transfer.id);
          if (res.json.events.length === 0) break;
          since = res.json.next_since;
        }
        assert.deepEqual(seen.sort(), made.filter((t) => t.from === p || t.to === p).map((t) => t.id).sort());
      }
      await s.stop({ keepData: true });
      keep = true;
      const v = verify(s.dir);
      assert.equal(v.status, 0, v.stdout + v.stderr);
    } finally {
      if (keep) rmSync(s.dir, { recursive: true, force: true });
      else await s.stop();
    }
  });

  test('currencies come from configuration', async () => {
    const s = await startServer({ env: { PLAZA_CURRENCIES: 'JPY' } });
    try {
      const a = await register(s);
      assert.deepEqual((await s.call('GET', '/v1/wallet', { token: a.token })).json.balances, [{ currency: 'JPY', available: 0 }]);
      expectError(assert, await topup(s, a, 100, 'USD'), 400, 'unknown_currency');
      assert.equal((await topup(s, a, 100, 'JPY')).status, 201);
    } finally {
      await s.stop();
    }
  });

  test('idempotent retries after kill -9 get the first answer; ledger verify passes, then catches a damaged balance', async () => {
    const s = await startServer();
    let s2;
    try {
      const a = await funded(s, 1000);
      const b = await register(s);
      const key = newKey();
      const first = await send(s, a, b, 250, { key });
      assert.equal(first.status, 201);
      await s.kill9();
      s2 = await startServer({ dataDir: s.dir });
      const again = await send(s2, a, b, 250, { key });
      assert.equal(again.status, 201);
      assert.equal(again.text, first.text);
      assert.equal(await balance(s2, a), 750);
      await s2.stop({ keepData: true });
      s2 = null;
      const ok = verify(s.dir);
      assert.equal(ok.status, 0, ok.stdout + ok.stderr);
      assert.match(ok.stdout, /ok/);
      execFileSync('sqlite3', [path.join(s.dir, 'plaza.db'),
        "UPDATE wallet_accounts SET balance = balance + 1 WHERE id = (SELECT id FROM wallet_accounts WHERE kind = 'user' LIMIT 1)"]);
      const bad = verify(s.dir);
      assert.equal(bad.status, 1, bad.stdout + bad.stderr);
      assert.match(bad.stdout, /cached balance/);
      assert.equal(verify(path.join(s.dir, 'missing')).status, 2);
    } finally {
      await s2?.stop();
      await s.stop();
    }
  });
});
